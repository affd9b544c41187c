// Command etcd runs the etcd server from go.etcd.io/etcd/server/v3 at the
// version pinned in go.mod; it is the same entry point as etcd's own main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
