//go:build tools

// Package tools pins the Kubernetes control-plane binaries the local test cluster is built from, and the kubectl of
// the same version (scripts/build-testenv --with-kubectl).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
