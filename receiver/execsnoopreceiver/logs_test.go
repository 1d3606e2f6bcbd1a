package execsnoopreceiver

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver/internal/metadata"
)

const containerID = "3f2b8d0c9a1e4b7f8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"

// fakeHierarchy makes a cgroup tree in a temporary directory and returns
// a mapper over it plus the ids of a host cgroup and a container's.
func fakeHierarchy(t *testing.T) (*procattr.Mapper, uint64, uint64) {
	root := t.TempDir()
	ino := func(rel string) uint64 {
		dir := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(dir, &st))
		return st.Ino
	}
	host := ino("system.slice/cron.service")
	container := ino("system.slice/docker-" + containerID + ".scope")
	return &procattr.Mapper{Cgroups: cgroup.NewResolver(root)}, host, container
}

func TestBatchGroupsByContainer(t *testing.T) {
	mapper, hostCg, containerCg := fakeHierarchy(t)
	b := newLogBatch(mapper, nil, "1.2.3")
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	exec := bpf.Event{Kind: bpf.KindExec, PID: 7, PPID: 1, Comm: "sh", Filename: "/bin/sh",
		Args: []string{"sh", "-c", "exit 3"}, Argc: 3, Time: now.Add(-time.Millisecond), CgroupID: hostCg}
	b.add(&exec, now, spanLink{})
	inContainer := exec
	inContainer.CgroupID = containerCg
	b.add(&inContainer, now, spanLink{})
	failed := exec
	failed.Retval = -13
	b.add(&failed, now, spanLink{})
	require.Equal(t, 3, b.count)

	logs, _ := b.take()
	assert.Equal(t, 0, b.count)
	require.Equal(t, 2, logs.ResourceLogs().Len())
	host, container := logs.ResourceLogs().At(0), logs.ResourceLogs().At(1)
	assert.Equal(t, 0, host.Resource().Attributes().Len())
	cid, _ := container.Resource().Attributes().Get(procattr.ContainerID)
	assert.Equal(t, containerID, cid.Str())
	assert.Equal(t, metadata.ScopeName, host.ScopeLogs().At(0).Scope().Name())
	assert.Equal(t, "1.2.3", host.ScopeLogs().At(0).Scope().Version())
	require.Equal(t, 2, host.ScopeLogs().At(0).LogRecords().Len())

	lr := host.ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, "process.exec", lr.EventName())
	assert.Equal(t, now.Add(-time.Millisecond), lr.Timestamp().AsTime())
	assert.Equal(t, now, lr.ObservedTimestamp().AsTime())
	assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())
	assert.Equal(t, "sh -c 'exit 3'", lr.Body().Str())
	args, _ := lr.Attributes().Get(procattr.ProcessCommandArgs)
	assert.Equal(t, []any{"sh", "-c", "exit 3"}, args.Slice().AsRaw())
	cg, _ := lr.Attributes().Get(procattr.ProcessLinuxCgroup)
	assert.Equal(t, "0::/system.slice/cron.service", cg.Str())

	failedRecord := host.ScopeLogs().At(0).LogRecords().At(1)
	assert.Equal(t, plog.SeverityNumberWarn, failedRecord.SeverityNumber())
	errType, _ := failedRecord.Attributes().Get(procattr.ErrorType)
	assert.Equal(t, "EACCES", errType.Str())

	// The next batch starts empty.
	b.add(&exec, now, spanLink{})
	logs, _ = b.take()
	assert.Equal(t, 1, logs.LogRecordCount())
}
