//go:build !linux || !amd64

package bpf

// KernelLimits: nothing is known off Linux/amd64, where Open fails anyway.
func KernelLimits() []string { return nil }
