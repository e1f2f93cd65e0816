package controllers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// Adoption: a camera container that fliswarm did not create (the Python
// fliswarm's, or one an operator ran by hand) carries none of fliswarm's
// labels. When it is named as the spec names the node's container and
// runs what the spec asks for, it is adopted: kept running, and treated
// from then on as fliswarm's own camera. One that differs in anything is
// replaced, as a changed spec would be, with each difference named.
//
// What the spec asks for is compared as the engine reports it, whatever
// way the container was asked for: -v or --mount, CPUs as --cpus or as a
// period and a quota, the image by name or by ID. What the engine adds by
// itself (the image's own environment and user, anonymous volumes for the
// image's VOLUMEs) is not a difference. Auto-remove (--rm, which the
// original used) is kept as it is: it changes only what happens when the
// camera exits, and then fliswarm creates its own container at once.

// adoptDiff lists how c, a container without fliswarm's labels, differs
// from want; none means c runs what the spec asks for. img is the spec's
// image on the node (nil when it is not there); own is the image c runs
// (nil when unknown; img when c runs that one), whose environment, user
// and volumes c may carry beside the spec's. It is pure.
func adoptDiff(want render.Container, c engine.Container, img, own *engine.Image) []string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	sum := want.Summary

	// Image: by ID when the spec's image is on the node, else by name.
	switch {
	case img != nil && c.ImageID != img.ID:
		add("image %s (%s) → %s (%s)", c.Image, short(c.ImageID), sum.Image, short(img.ID))
	case img == nil && c.Image != sum.Image:
		add("image %s → %s", c.Image, sum.Image)
	}
	if own == nil && img != nil && c.ImageID == img.ID {
		own = img
	}
	if c.Privileged != sum.Privileged {
		add("privileged %t → %t", c.Privileged, sum.Privileged)
	}
	if c.NetworkMode != sum.NetworkMode {
		add("network %s → %s", orNone(c.NetworkMode), sum.NetworkMode)
	}
	if c.User != sum.User && (sum.User != "" || own == nil || c.User != own.User) {
		add("user %s → %s", orNone(c.User), orNone(sum.User))
	}
	d = append(d, envDiff(sum.Env, c.Env, own)...)
	d = append(d, mountDiff(want, c, own)...)
	d = append(d, deviceDiff(want, c)...)
	if h, w := cpuNanos(c.CPUPeriod, c.CPUQuota, c.NanoCPUs), cpuNanos(render.CPUPeriod, sum.CPUQuota, 0); h != w {
		add("cpus %s → %s", fmtCPUs(h), fmtCPUs(w))
	}
	if c.Memory != sum.MemoryBytes {
		add("memory %s → %s", fmtBytes(c.Memory), fmtBytes(sum.MemoryBytes))
	}
	if h, w := restartPolicy(c.RestartPolicy), restartPolicy(sum.RestartPolicy); h != w {
		add("restart policy %s → %s", h, w)
	}
	return d
}

// envDiff names each variable of want missing or different in have, and
// each of have neither asked for nor the image's own.
func envDiff(want, have []string, own *engine.Image) []string {
	var d []string
	w, h := envMap(want), envMap(have)
	var imgEnv map[string]string
	if own != nil {
		imgEnv = envMap(own.Env)
	}
	for _, k := range sortedKeys(w) {
		switch hv, ok := h[k]; {
		case !ok:
			d = append(d, "env "+k+" missing")
		case hv != w[k]:
			d = append(d, fmt.Sprintf("env %s %q → %q", k, hv, w[k]))
		}
	}
	for _, k := range sortedKeys(h) {
		if _, asked := w[k]; asked {
			continue
		}
		if iv, ok := imgEnv[k]; !ok || iv != h[k] {
			d = append(d, "env "+k+" extra")
		}
	}
	return d
}

// mountDiff compares mounts by their target: each the spec asks for must
// be there from the same volume or host path; any other is a difference,
// but for an anonymous volume at one of the image's VOLUMEs.
func mountDiff(want render.Container, c engine.Container, own *engine.Image) []string {
	var d []string
	have := map[string]engine.Mount{}
	for _, m := range c.Mounts {
		have[m.Target] = m
	}
	asked := map[string]bool{}
	for _, m := range want.HostConfig.Mounts {
		asked[m.Target] = true
		got, ok := have[m.Target]
		wantDesc := mountDesc(string(m.Type), m.Source, m.Source)
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("mount %s missing (%s)", m.Target, wantDesc))
		case mountDesc(got.Type, got.Name, got.Source) != wantDesc:
			d = append(d, fmt.Sprintf("mount %s %s → %s", m.Target, mountDesc(got.Type, got.Name, got.Source), wantDesc))
		}
	}
	for _, m := range c.Mounts {
		if asked[m.Target] || m.Type == "volume" && own != nil && slices.Contains(own.Volumes, m.Target) {
			continue
		}
		d = append(d, fmt.Sprintf("mount %s extra (%s)", m.Target, mountDesc(m.Type, m.Name, m.Source)))
	}
	return d
}

// mountDesc is "volume NAME" or "TYPE SOURCE".
func mountDesc(typ, name, source string) string {
	if typ == "volume" {
		return "volume " + name
	}
	return typ + " " + source
}

// deviceDiff compares the device mappings as sets; no permissions is the
// engine's default, rwm.
func deviceDiff(want render.Container, c engine.Container) []string {
	var d []string
	dev := func(host, ctr, perms string) string {
		if perms == "" {
			perms = "rwm"
		}
		return host + ":" + ctr + ":" + perms
	}
	var w, h []string
	for _, m := range want.HostConfig.Resources.Devices {
		w = append(w, dev(m.PathOnHost, m.PathInContainer, m.CgroupPermissions))
	}
	for _, m := range c.Devices {
		h = append(h, dev(m.PathOnHost, m.PathInContainer, m.CgroupPermissions))
	}
	for _, x := range w {
		if !slices.Contains(h, x) {
			d = append(d, "device "+x+" missing")
		}
	}
	for _, x := range h {
		if !slices.Contains(w, x) {
			d = append(d, "device "+x+" extra")
		}
	}
	return d
}

// cpuNanos is a CPU limit in billionths of a CPU, however it was written:
// NanoCPUs, or a quota per period (the engine's default period is
// 100 ms); 0 is no limit.
func cpuNanos(period, quota, nanos int64) int64 {
	switch {
	case nanos > 0:
		return nanos
	case quota > 0:
		if period <= 0 {
			period = render.CPUPeriod
		}
		return quota * 1_000_000_000 / period
	}
	return 0
}

func fmtCPUs(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
}

// fmtBytes writes a memory limit as docker's flags do: 6g, 512m, ...
func fmtBytes(n int64) string {
	switch {
	case n == 0:
		return "unlimited"
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "g"
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "m"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "k"
	}
	return strconv.FormatInt(n, 10) + "b"
}

// restartPolicy is the policy's name, "no" when unset.
func restartPolicy(p string) string {
	if p == "" {
		return "no"
	}
	return p
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// envMap reads KEY=VALUE lines; a line without = is a key with no value.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
