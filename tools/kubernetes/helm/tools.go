//go:build tools

// Package helm pins Helm v3 (helm.sh/helm/v3), which renders the chart into
// deploy/kubernetes and installs it in test/k8s; `make helm` builds it.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
