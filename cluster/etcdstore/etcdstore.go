// Package etcdstore is the cluster's Store on etcd (the v3 API through
// go.etcd.io/etcd/client/v3). Only the home agent links it: the router's
// binary (the routeronly build) has no package that imports it.
package etcdstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"nemod/cluster"
)

// Config says how to reach etcd.
type Config struct {
	Endpoints []string
	// TLS files (PEM); empty: none (https endpoints use the system's roots).
	CA, Cert, Key string
	// DialTimeout bounds the first connection (default 5 s).
	DialTimeout time.Duration
	// Dial, when set, makes the connections (a test's, from inside a
	// network namespace).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Store is cluster.Store on an etcd client.
type Store struct {
	c *clientv3.Client
}

var _ cluster.Store = (*Store)(nil)

// Open connects to etcd; it does not wait for a server to answer.
func Open(cfg Config) (*Store, error) {
	cc := clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout,
		// The client's own log would go to stderr in its format; its
		// errors reach the caller through the calls.
		Logger: zap.NewNop(),
		// A lost connection is found within a lease: the client probes it.
		DialKeepAliveTime: time.Second, DialKeepAliveTimeout: time.Second,
	}
	if cfg.Dial != nil {
		cc.DialOptions = append(cc.DialOptions, grpc.WithContextDialer(cfg.Dial))
	}
	if cc.DialTimeout == 0 {
		cc.DialTimeout = 5 * time.Second
	}
	if cfg.CA != "" || cfg.Cert != "" {
		t := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CA != "" {
			pem, err := os.ReadFile(cfg.CA)
			if err != nil {
				return nil, fmt.Errorf("etcd CA: %w", err)
			}
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("etcd CA %s: no certificate", cfg.CA)
			}
		}
		if cfg.Cert != "" {
			c, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
			if err != nil {
				return nil, fmt.Errorf("etcd client certificate: %w", err)
			}
			t.Certificates = []tls.Certificate{c}
		}
		cc.TLS = t
	}
	c, err := clientv3.New(cc)
	if err != nil {
		return nil, err
	}
	return &Store{c: c}, nil
}

// Grant implements cluster.Store. etcd counts leases in seconds.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (int64, error) {
	r, err := s.c.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, err
	}
	return int64(r.ID), nil
}

// KeepAlive implements cluster.Store.
func (s *Store) KeepAlive(ctx context.Context, lease int64) (time.Duration, error) {
	r, err := s.c.KeepAliveOnce(ctx, clientv3.LeaseID(lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return 0, cluster.ErrNoLease
	}
	if err != nil {
		return 0, err
	}
	return time.Duration(r.TTL) * time.Second, nil
}

// Revoke implements cluster.Store.
func (s *Store) Revoke(ctx context.Context, lease int64) error {
	_, err := s.c.Revoke(ctx, clientv3.LeaseID(lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return cluster.ErrNoLease
	}
	return err
}

// Commit implements cluster.Store: one transaction whose guards are the
// ops' revisions.
func (s *Store) Commit(ctx context.Context, ops []cluster.Op) (int64, bool, error) {
	var cmps []clientv3.Cmp
	var then []clientv3.Op
	for _, op := range ops {
		switch {
		case op.Rev == cluster.AnyRev:
		case op.Rev == 0:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(op.Key), "=", 0))
		default:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(op.Key), "=", op.Rev))
		}
		switch {
		case op.Delete:
			then = append(then, clientv3.OpDelete(op.Key))
		case op.Lease != 0:
			then = append(then, clientv3.OpPut(op.Key, string(op.Value), clientv3.WithLease(clientv3.LeaseID(op.Lease))))
		default:
			then = append(then, clientv3.OpPut(op.Key, string(op.Value)))
		}
	}
	r, err := s.c.Txn(ctx).If(cmps...).Then(then...).Commit()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return 0, false, cluster.ErrNoLease
	}
	if err != nil {
		return 0, false, err
	}
	return r.Header.Revision, r.Succeeded, nil
}

// Get implements cluster.Store.
func (s *Store) Get(ctx context.Context, prefix string) ([]cluster.KV, int64, error) {
	r, err := s.c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	out := make([]cluster.KV, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		out = append(out, cluster.KV{Key: string(kv.Key), Value: kv.Value, CreateRev: kv.CreateRevision, ModRev: kv.ModRevision, Lease: kv.Lease})
	}
	return out, r.Header.Revision, nil
}

// Watch implements cluster.Store.
func (s *Store) Watch(ctx context.Context, prefix string, rev int64) <-chan []cluster.Event {
	out := make(chan []cluster.Event)
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	// RequireLeader: a watch on a member cut off from its cluster fails
	// instead of waiting silently.
	wch := s.c.Watch(clientv3.WithRequireLeader(ctx), prefix, opts...)
	go func() {
		defer close(out)
		for wr := range wch {
			if wr.Err() != nil || wr.Canceled {
				return
			}
			evs := make([]cluster.Event, 0, len(wr.Events))
			for _, e := range wr.Events {
				kv := e.Kv
				evs = append(evs, cluster.Event{KV: cluster.KV{Key: string(kv.Key), Value: kv.Value, CreateRev: kv.CreateRevision,
					ModRev: kv.ModRevision, Lease: kv.Lease}, Deleted: e.Type == clientv3.EventTypeDelete})
			}
			if len(evs) == 0 {
				continue
			}
			select {
			case out <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Close implements cluster.Store.
func (s *Store) Close() error { return s.c.Close() }
