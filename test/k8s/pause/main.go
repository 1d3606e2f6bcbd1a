// Command pause is the pod sandbox ("pause") image of test/k8s's cluster,
// which cannot pull registry.k8s.io/pause: it holds the pod's namespaces by
// waiting until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
