//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// fileIDKernfs is the file handle type of cgroup2 directories: the handle
// is the cgroup id, so an id opens its directory without a walk.
const fileIDKernfs = 0xfe

// handleOpener resolves ids with open_by_handle_at(2) on the hierarchy's
// root. It turns itself off on the first permission error.
type handleOpener struct {
	rootFD   int // 0: not opened yet
	disabled bool
}

func (h *handleOpener) path(root string, id uint64) (string, bool) {
	if h.disabled {
		return "", false
	}
	if h.rootFD == 0 {
		fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) // not O_PATH: open_by_handle_at refuses that (EBADF)
		if err != nil {
			h.disabled = true
			return "", false
		}
		h.rootFD = fd
	}
	handle := make([]byte, 8)
	for i := range handle {
		handle[i] = byte(id >> (8 * i))
	}
	fd, err := unix.OpenByHandleAt(h.rootFD, unix.NewFileHandle(fileIDKernfs, handle), unix.O_PATH|unix.O_CLOEXEC)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
		h.disabled = true // no CAP_DAC_READ_SEARCH: walk instead
		return "", false
	}
	if err != nil {
		return "", false // e.g. ESTALE: the cgroup is gone
	}
	defer unix.Close(fd)
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !strings.HasPrefix(target, root) {
		return "", false
	}
	if rel := strings.TrimPrefix(target, root); rel != "" {
		return rel, true
	}
	return "/", true
}

func (h *handleOpener) close() error {
	if h.rootFD <= 0 {
		return nil
	}
	err := unix.Close(h.rootFD)
	h.rootFD, h.disabled = 0, true
	return err
}
