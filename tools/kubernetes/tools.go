//go:build tools

// Package kubernetes pins the Kubernetes control plane, node and client
// (k8s.io/kubernetes v1.37.2) that test/k8s assembles into a one-node
// cluster; `make k8s-bins` builds them into bin/.
package kubernetes

import (
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
