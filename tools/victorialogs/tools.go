//go:build tools

// Package victorialogs pins VictoriaLogs v1.52.2 (Apache-2.0), the log store
// of the end-to-end detection test: it ingests OTLP/HTTP logs and answers
// the receiver README's LogsQL queries. `make victorialogs` builds it.
package victorialogs

import _ "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
