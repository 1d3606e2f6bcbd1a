module github.com/otelexecsnoop/execsnoop

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/sys v0.50.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
)

tool github.com/cilium/ebpf/cmd/bpf2go
