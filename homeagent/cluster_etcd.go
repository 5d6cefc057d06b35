package homeagent

import (
	"nemod/cluster"
	"nemod/cluster/etcdstore"
	"nemod/config"
)

// openEtcd opens the cluster's etcd.
func openEtcd(c *config.Cluster) (cluster.Store, error) {
	return etcdstore.Open(etcdstore.Config{Endpoints: c.Endpoints, CA: c.TLSCA, Cert: c.TLSCert, Key: c.TLSKey})
}
