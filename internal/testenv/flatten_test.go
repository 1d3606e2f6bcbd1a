package testenv

import (
	"reflect"
	"testing"
)

func TestFlatten(t *testing.T) {
	got := Flatten(map[string]any{
		"a": 1,
		"b": map[string]any{"c": "x", "d": map[string]any{"e": []any{1, 2}}},
		"f": map[string]any{},
	})
	want := map[string]any{"a": 1, "b.c": "x", "b.d.e": []any{1, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Flatten = %v, want %v", got, want)
	}
}
