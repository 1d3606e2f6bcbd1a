package testenv

// Flatten turns nested maps (a YAML or JSON document) into one map with
// dotted keys, "a.b.c", as the receiver's settings are named.
func Flatten(m map[string]any) map[string]any {
	out := map[string]any{}
	flattenInto("", m, out)
	return out
}

func flattenInto(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flattenInto(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}
