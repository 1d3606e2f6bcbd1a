// Command etcd is etcd v3.7.3's server (go.etcd.io/etcd/server/v3), the
// store of test/k8s's one-node cluster. etcd's own main package lives in a
// module the proxy does not serve, so this calls the same entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
