#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the end-to-end tests of the
# runtime pool: kube-apiserver from k8s.io/kubernetes and etcd (a small
# program around go.etcd.io/etcd/server/v3's embed package), both from the
# Go module proxy, into a cache reused by later runs:
#
#   scripts/k8s-control-plane.sh      # prints the directory holding both binaries
#
# The cache is $CXP_K8S_CACHE, or ~/.cache/cloudxr-wss-proxy/k8s-<version>.
# A cold build takes about 8 minutes on two cores (kube-apiserver is a
# 170 MB binary); a warm one returns at once. No cluster, kind or k3s is
# needed or downloaded: there is no scheduler or kubelet, but every API
# object (Leases, EndpointSlices, RBAC) is created, watched and enforced.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
k8s_version=v1.37.2    # k8s.io/kubernetes; its staging modules are v0.37.2
staging_version=v0.37.2
etcd_version=v3.7.0
cache=${CXP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudxr-wss-proxy/k8s-$k8s_version-etcd-$etcd_version}
if [ -x "$cache/kube-apiserver" ] && [ -x "$cache/etcd" ]; then
	echo "$cache"
	exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod

# kube-apiserver: k8s.io/kubernetes names its staging modules as local
# replacements (./staging/...), which a module that requires it cannot
# use; they are replaced here by the same modules' published versions.
mkdir -p "$work/apiserver"
cd "$work/apiserver"
go mod init cxp-k8s-apiserver >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
[ -s "$gomod" ] || { echo "k8s.io/kubernetes@$k8s_version: no go.mod from the module proxy" >&2; exit 1; }
{
	echo "require k8s.io/kubernetes $k8s_version"
	echo "replace ("
	sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\t\1 => \1 '"$staging_version"'|p' "$gomod"
	echo ")"
} >>go.mod
cat >main.go <<'GO'
package main

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"

func main() {}
GO
echo "building kube-apiserver $k8s_version (about 8 minutes the first time)..." >&2
go mod tidy >/dev/null 2>&1 || true
go build -o "$cache/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$cache/kube-apiserver.tmp" "$cache/kube-apiserver"

# etcd: go install of its server module is refused (it has replace
# directives); a program around embed.StartEtcd is all the tests need.
mkdir -p "$work/etcd"
cd "$work/etcd"
go mod init cxp-k8s-etcd >/dev/null 2>&1
cat >main.go <<'GO'
// etcd for tests: one member, data in -data-dir, clients on -listen.
package main

import (
	"flag"
	"log"
	"net/url"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dir := flag.String("data-dir", "", "data directory")
	client := flag.String("listen", "http://127.0.0.1:2379", "client URL")
	peer := flag.String("peer", "http://127.0.0.1:2380", "peer URL")
	flag.Parse()
	cfg := embed.NewConfig()
	cfg.Dir = *dir
	cu, err := url.Parse(*client)
	if err != nil {
		log.Fatal(err)
	}
	pu, err := url.Parse(*peer)
	if err != nil {
		log.Fatal(err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	<-e.Server.ReadyNotify()
	log.Printf("etcd ready on %s", cu)
	log.Fatal(<-e.Err())
}
GO
go get "go.etcd.io/etcd/server/v3@$etcd_version" >/dev/null 2>&1
go mod tidy >/dev/null 2>&1
go build -o "$cache/etcd.tmp" .
mv "$cache/etcd.tmp" "$cache/etcd"
echo "$cache"
