//go:build !linux || !(amd64 || arm64)

package bpf

import (
	"errors"
	"runtime"
)

// Probe is only implemented on Linux on amd64 and arm64 and arm64; elsewhere Open fails.
type Probe struct{}

var errUnsupported = errors.New("execsnoop is only supported on Linux (amd64, arm64), not " + runtime.GOOS + "/" + runtime.GOARCH)

func Open(Options) (*Probe, error)        { return nil, errUnsupported }
func (*Probe) Read(*Event) error          { return errUnsupported }
func (*Probe) Stats() Stats               { return Stats{} }
func (*Probe) Transport() Transport       { return "" }
func (*Probe) KernelReport() KernelReport { return KernelReport{} }
func (*Probe) Stop() error                { return nil }
func (*Probe) Close() error               { return nil }
