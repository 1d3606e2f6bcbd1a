//go:build tools

// Package jaeger pins Jaeger v2 (module version v1.76.0 = Jaeger v2.13.0),
// the trace backend of the end-to-end span test; `make jaeger` builds it.
package jaeger

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
