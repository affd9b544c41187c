package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// validateNames checks the names that must be valid where they are used:
// the listen addresses of the endpoints, the Lease's namespace and name,
// and the fence classes' names and node names.
func (c *Config) validateNames(p *problems) {
	metricsOK := checkListen(p, "metricsAddr", c.MetricsAddr)
	if checkListen(p, "healthAddr", c.HealthAddr) && metricsOK && c.HealthAddr == c.MetricsAddr && !strings.HasSuffix(c.HealthAddr, ":0") {
		p.add("healthAddr", c.HealthAddr, "must differ from metricsAddr: the two endpoints cannot listen on one address")
	}
	if le := c.LeaderElection; le.Enabled {
		dnsName(p, "leaderElection.namespace", le.Namespace, "a namespace name", dnsLabel)
		dnsName(p, "leaderElection.name", le.Name, "a Lease name", dnsSubdomain)
	}
	for i := range c.Fencing.Classes {
		fc := &c.Fencing.Classes[i]
		f := fmt.Sprintf("fencing.classes[%d]", i)
		dnsName(p, f+".name", fc.Name, "a fence class name (shown in events and in the Takeover's spec.fenceClass)", dnsLabel)
		for j, n := range fc.NodeNames {
			dnsName(p, fmt.Sprintf("%s.nodeNames[%d]", f, j), n, "a node name", dnsSubdomain)
		}
		for _, n := range sortedKeys(fc.Nodes) {
			if n != "" {
				dnsName(p, f+".nodes."+n, n, "a node name", dnsSubdomain)
			}
		}
	}
}

// The kinds of Kubernetes names (RFC 1123), and what they are, said
// shortly.
var (
	dnsLabel = dnsKind{validation.IsDNS1123Label,
		"lower-case letters, digits and '-', starting and ending with a letter or a digit, at most 63 characters"}
	dnsSubdomain = dnsKind{validation.IsDNS1123Subdomain,
		"lower-case letters, digits, '-' and '.', starting and ending with a letter or a digit, at most 253 characters"}
)

type dnsKind struct {
	check func(string) []string
	rule  string
}

// dnsName checks a non-empty name (an empty one is reported where it is
// required).
func dnsName(p *problems, field, name, what string, kind dnsKind) {
	if name != "" && len(kind.check(name)) > 0 {
		p.add(field, name, "must be "+what+": "+kind.rule)
	}
}

// checkListen checks a listen address, host:port; it reports whether the
// address is valid.
func checkListen(p *problems, field, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(field, addr, "must be host:port, such as \":8080\" or \"127.0.0.1:8080\"")
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(field, addr, "must be host:port with a port number from 0 to 65535")
		return false
	}
	if host != "" && net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(host))) > 0 {
		p.add(field, addr, "must be host:port with an IP address or a host name")
		return false
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxSelectorLen bounds a label selector: longer ones are refused before
// they are parsed.
const maxSelectorLen = 4096

// parseSelector parses a label selector of at most maxSelectorLen bytes.
func parseSelector(s string) (labels.Selector, error) {
	if len(s) > maxSelectorLen {
		return nil, fmt.Errorf("it has %d bytes, more than %d", len(s), maxSelectorLen)
	}
	return labels.Parse(s)
}
