package execsnoopreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg.(*Config), confmap.Validate(cfg)
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), cfg)
	// An empty section reports failed execs and exits.
	assert.Equal(t, "include", cfg.FailedExecs)
	assert.True(t, cfg.Exits)
	assert.True(t, cfg.Filters.ExcludeSelf)
}

func TestCustomConfig(t *testing.T) {
	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	assert.Equal(t, &Config{
		Buffer:         BufferConfig{Type: "perf", Size: 16 << 20, DrainPeriod: 100 * time.Millisecond},
		Args:           ArgsConfig{MaxBytes: 32768, MaxCount: 256},
		FailedExecs:    "exclude",
		FailedExecHook: "sys_exit",
		Exits:          false,
		Executable:     ExecutableConfig{Hash: HashConfig{MaxSize: 1 << 20, MaxWait: 2 * time.Second, CacheEntries: 16}},
		ExecContext:    []string{"credentials"},
		Lineage:        LineageConfig{MaxAncestors: 0, ParentArgsBytes: 256, MaxProcesses: 1000},
		Filters: FiltersConfig{UIDs: []uint32{0, 1000}, Cgroup: "/sys/fs/cgroup/system.slice",
			IncludeComms: []string{"kube*", "sh"}, ExcludeComms: []string{"true"}},
		Redaction: RedactionConfig{Enabled: false, Patterns: []string{"internal-[0-9]+"}},
		Batch:     BatchConfig{MaxSize: 100, FlushInterval: time.Second},
		Traces:    TracesConfig{Roots: []string{"make", "bash ci.sh*"}, MaxOpenSpans: 50, ContextFromEnv: false, EnvScanBytes: 16384},
	}, cfg)
	assert.False(t, cfg.probeOptions(false).ExcludeSelf, "exclude_self is off")
	assert.True(t, cfg.Filters.keepComm("kubelet"))
	assert.True(t, cfg.Filters.keepComm("sh"))
	assert.False(t, cfg.Filters.keepComm("bash"))
	assert.True(t, createDefaultConfig().probeOptions(false).ExcludeSelf)
	// Without lineage, spans or exits no fork or exit program loads; the
	// lineage group loads both (its process table needs them).
	opts := cfg.probeOptions(false)
	assert.False(t, opts.Forks || opts.Exits, "custom: forks %v exits %v", opts.Forks, opts.Exits)
	cfg.ExecContext = []string{"lineage"}
	opts = cfg.probeOptions(false)
	assert.True(t, opts.Forks && opts.Exits, "lineage: forks %v exits %v", opts.Forks, opts.Exits)
}

func TestInvalidConfigNamesEachField(t *testing.T) {
	_, err := loadConfig(t, "invalid")
	require.Error(t, err)
	for _, field := range []string{"buffer.type", "buffer.size", "buffer.drain_period", "args.max_bytes",
		"args.max_count", "failed_execs", "failed_exec_hook", "exec_context", "lineage.max_ancestors",
		"lineage.parent_args_bytes", "lineage.max_processes", "filters.cgroup", "filters.include_comms", "redaction.patterns", "batch.max_size", "traces.max_open_spans", "traces.env_scan_bytes",
		"batch.flush_interval"} {
		assert.Contains(t, err.Error(), field+":")
	}
}

func TestUnknownKeyIsRejected(t *testing.T) {
	_, err := loadConfig(t, "unknown_key")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "buffers"), err.Error())
}
