package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// reservedAgentKeys are the fence-agent stdin keys liberator sets itself.
var reservedAgentKeys = map[string]string{
	"action": "action", "ip": "address", "ipaddr": "address", "ipport": "port",
	"username": "credentialsSecret", "login": "credentialsSecret", "password": "credentialsSecret", "passwd": "credentialsSecret",
}

var (
	optionKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	agentName = regexp.MustCompile(`^fence_[A-Za-z0-9_]+$`)
)

// validatePowerFence checks the fields of the fence-agent and redfish
// providers, and that no other provider sets them.
func validatePowerFence(p *problems, f string, fc *FenceClass) {
	if !fc.HasPowerFence() {
		validateNoPowerFields(p, f, fc)
		return
	}
	switch fc.Action {
	case ActionOff, ActionReboot:
	default:
		p.add(f+".action", fc.Action, "must be off or reboot")
	}
	if fc.PowerOnAfterTakeover && fc.Action == ActionReboot {
		p.add(f+".powerOnAfterTakeover", true, "only applies to action off (a reboot turns the node back on by itself)")
	}
	bmcs, names := classBMCs(p, f, fc)
	for _, name := range names {
		prefix := f
		if name != "" {
			prefix = f + ".nodes." + name
		}
		validateBMC(p, prefix, fc, bmcs[name])
	}
	switch fc.Provider {
	case ProviderFenceAgent:
		validateFenceAgent(p, f, fc)
	case ProviderRedfish:
		validateRedfish(p, f, fc, bmcs, names)
	}
}

// validateNoPowerFields reports, in name order, every power-fence field set
// on a class whose provider does not drive the node's power.
func validateNoPowerFields(p *problems, f string, fc *FenceClass) {
	set := []string{}
	for name, isSet := range map[string]bool{
		"agent": fc.Agent != "", "address": fc.Address != "", "port": fc.Port != 0, "options": len(fc.Options) > 0,
		"action": fc.Action != "", "credentialsSecret": fc.CredentialsSecret != "", "systemID": fc.SystemID != "",
		"insecureSkipVerify": fc.InsecureSkipVerify, "nodes": len(fc.Nodes) > 0, "powerOnAfterTakeover": fc.PowerOnAfterTakeover,
	} {
		if isSet {
			set = append(set, name)
		}
	}
	sort.Strings(set)
	for _, name := range set {
		p.add(f+"."+name, "set", "only the fence-agent and redfish providers take "+name+" (provider is "+fc.Provider+")")
	}
}

// classBMCs returns the class's own BMC settings (under the name "") and
// each node's, as written (without the class's applied), with their names
// sorted. A node with an empty name is reported and left out.
func classBMCs(p *problems, f string, fc *FenceClass) (map[string]BMC, []string) {
	bmcs := map[string]BMC{"": {Address: fc.Address, Port: fc.Port, Options: fc.Options, CredentialsSecret: fc.CredentialsSecret, SystemID: fc.SystemID}}
	for name, n := range fc.Nodes {
		if name == "" {
			p.add(f+".nodes", name, "node names must not be empty")
			continue
		}
		bmcs[name] = BMC(n)
	}
	names := make([]string, 0, len(bmcs))
	for name := range bmcs {
		names = append(names, name)
	}
	sort.Strings(names)
	return bmcs, names
}

// validateBMC checks one set of BMC settings, the class's or a node's, whose
// field path is prefix.
func validateBMC(p *problems, prefix string, fc *FenceClass, b BMC) {
	if b.Port < 0 || b.Port > 65535 {
		p.add(prefix+".port", b.Port, "must be a port number from 1 to 65535 (0 for the default)")
	}
	dnsName(p, prefix+".credentialsSecret", b.CredentialsSecret, "a Secret name", dnsSubdomain)
	if b.Address != "" {
		if err := checkAddress(fc.Provider, b.Address); err != nil {
			p.add(prefix+".address", b.Address, err.Error())
		}
	}
	keys := make([]string, 0, len(b.Options))
	for k := range b.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		validateOption(p, prefix, fc, k, b.Options[k])
	}
	if b.SystemID != "" && fc.Provider != ProviderRedfish {
		p.add(prefix+".systemID", b.SystemID, "systemID is for the redfish provider only")
	}
}

// validateOption checks one fence-agent option k=v of the BMC settings at
// prefix.
func validateOption(p *problems, prefix string, fc *FenceClass, k, v string) {
	switch {
	case fc.Provider != ProviderFenceAgent:
		p.add(prefix+".options."+k, v, "options are for the fence-agent provider only")
	case !optionKey.MatchString(k):
		p.add(prefix+".options", k, "option names are lower-case words such as lanplus or power_wait")
	case reservedAgentKeys[k] != "":
		if reservedAgentKeys[k] == "credentialsSecret" {
			v = "***" // never echo what may be a password
		}
		p.add(prefix+".options."+k, v, "liberator sets "+k+" itself: use the class field "+reservedAgentKeys[k])
	case strings.ContainsAny(v, "\n\r\x00"):
		first, _, _ := strings.Cut(v, "\n")
		p.add(prefix+".options."+k, strings.TrimRight(first, "\r\x00")+"...", "option values must be one line")
	case k == "method" && v == "cycle" && fc.Action == ActionReboot:
		p.add(prefix+".options.method", v, "method cycle resets the node without reading OFF back; use the default (onoff)")
	}
}

// validateFenceAgent checks the fields the fence-agent provider needs or
// does not take.
func validateFenceAgent(p *problems, f string, fc *FenceClass) {
	switch {
	case fc.Agent == "":
		p.add(f+".agent", "", "the fence-agent provider needs agent, such as fence_ipmilan")
	case strings.HasPrefix(fc.Agent, "/"):
		if path.Clean(fc.Agent) != fc.Agent {
			p.add(f+".agent", fc.Agent, "must be a clean absolute path or an agent name such as fence_ipmilan")
		}
	case !agentName.MatchString(fc.Agent):
		p.add(f+".agent", fc.Agent, "must be an agent name such as fence_ipmilan, or an absolute path")
	}
	if fc.InsecureSkipVerify {
		p.add(f+".insecureSkipVerify", true, "is for the redfish provider; fence agents take options such as ssl_insecure: \"1\"")
	}
}

// validateRedfish checks the fields the redfish provider needs or does not
// take: with no class address, every node (bmcs, by sorted names) needs one.
func validateRedfish(p *problems, f string, fc *FenceClass, bmcs map[string]BMC, names []string) {
	if fc.Agent != "" {
		p.add(f+".agent", fc.Agent, "is for the fence-agent provider only")
	}
	if fc.Address != "" {
		return
	}
	if len(fc.Nodes) == 0 {
		p.add(f+".address", "", "the redfish provider needs the BMC's address (or per-node addresses under nodes)")
	}
	for _, name := range names {
		if name != "" && bmcs[name].Address == "" {
			p.add(f+".nodes."+name+".address", "", "needs an address (the class has none)")
		}
	}
}

// ProtectedLabelPrefix is the label prefix the NodeRestriction admission
// plugin keeps kubelets from setting on their own Node.
const ProtectedLabelPrefix = "node-restriction.kubernetes.io/"

// kubeletLabels are the kubernetes.io labels a kubelet may set on its own
// Node under NodeRestriction; kubeletLabelDomains the namespaces it may.
var (
	kubeletLabels = map[string]bool{
		"kubernetes.io/hostname": true, "kubernetes.io/arch": true, "kubernetes.io/os": true,
		"beta.kubernetes.io/arch": true, "beta.kubernetes.io/os": true, "beta.kubernetes.io/instance-type": true,
		"node.kubernetes.io/instance-type": true, "failure-domain.beta.kubernetes.io/region": true,
		"failure-domain.beta.kubernetes.io/zone": true, "topology.kubernetes.io/region": true, "topology.kubernetes.io/zone": true,
	}
	kubeletLabelDomains = []string{"kubelet.kubernetes.io", "node.kubernetes.io"}
)

// KubeletCanSet reports whether a node's own kubelet may set the label key
// on its Node under NodeRestriction: any key outside the kubernetes.io and
// k8s.io namespaces, and a few within them.
func KubeletCanSet(key string) bool {
	domain, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	k8s := func(d string) bool {
		return d == "kubernetes.io" || d == "k8s.io" || strings.HasSuffix(d, ".kubernetes.io") || strings.HasSuffix(d, ".k8s.io")
	}
	if !k8s(domain) {
		return true
	}
	if kubeletLabels[key] {
		return true
	}
	for _, d := range kubeletLabelDomains {
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return true
		}
	}
	return false
}

// kubeletSettableKey returns the first label key of sel a kubelet may set,
// or "".
func kubeletSettableKey(sel labels.Selector) string {
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if KubeletCanSet(r.Key()) {
			return r.Key()
		}
	}
	return ""
}

func checkAddress(provider, a string) error {
	if strings.ContainsAny(a, " \t\n\r\x00") {
		return errors.New("must be a host name or address without spaces")
	}
	if !strings.Contains(a, "://") {
		return nil
	}
	if provider != ProviderRedfish {
		return errors.New("fence agents take a host name or address, not a URL")
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be a host, host:port, or an http(s) URL such as https://10.0.0.5")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return errors.New("must be https: over http the BMC credentials would cross the network in clear (http is accepted only for a loopback address, such as a local proxy)")
	}
	return nil
}

// loopback reports whether host names this machine (localhost, 127.0.0.0/8,
// ::1).
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Lower limits of the agent provider's margin: it covers how late a watch
// event may arrive (minMargin) and how far the clocks' rates may differ over
// the longest wait, maxIsolation (marginPercent of it).
const (
	minMargin     = time.Second
	marginPercent = 3
)

// validateSelfFence checks the agent provider's selfFence block (nil takes
// the defaults), and that no other provider has one.
func validateSelfFence(p *problems, f string, fc *FenceClass) {
	if fc.Provider != ProviderAgent {
		if fc.SelfFence != nil {
			p.add(f+".selfFence", "set", "only the agent provider takes selfFence (provider is "+fc.Provider+")")
		}
		return
	}
	if fc.Wait != nil {
		p.add(f+".wait", "set", "only the wait provider takes wait; the agent provider waits for the bounds its agents publish (selfFence)")
	}
	sf := fc.SelfFenceOrDefault()
	margin, maxIso := sf.Margin.Duration, sf.MaxIsolation.Duration
	least := max(minMargin, maxIso*marginPercent/100)
	switch {
	case margin <= 0:
		p.add(f+".selfFence.margin", margin, "must be a positive duration such as \"2s\"")
	case margin < least:
		p.add(f+".selfFence.margin", margin, fmt.Sprintf("cannot cover clock rates and watch delays: want at least %s and %d%% of maxIsolation (%s)", minMargin, marginPercent, least))
	}
	switch {
	case maxIso <= 0:
		p.add(f+".selfFence.maxIsolation", maxIso, "must be a positive duration such as \"60s\"")
	case maxIso <= margin:
		p.add(f+".selfFence.maxIsolation", maxIso, fmt.Sprintf("must exceed the margin %s: it is an agent's isolation bound plus the margin", margin))
	}
}
