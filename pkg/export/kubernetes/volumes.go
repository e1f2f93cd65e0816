package kubernetes

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// nominalSize is the capacity written on NFS volumes and claims: the API
// requires one, and NFS enforces none.
const nominalSize = "1Gi"

// source is what a Docker volume of the local driver becomes.
type source struct {
	// NFS: the server, its export and the mount options (addr= removed).
	NFS          bool
	Server, Path string
	MountOptions []string
	// Bind: the host path.
	HostPath string
	ReadOnly bool
}

// volumeSource reads a volume's driver options; the errors' paths are
// relative to the volume (".driver", ".opts.o").
func volumeSource(v v1.Volume) (source, error) {
	var errs v1.ErrorList
	if v.Driver != v1.DefaultVolumeDriver {
		errs.Add(".driver", "refused: driver %q is a Docker volume plugin with no Kubernetes counterpart; only %q (NFS or bind) is exported", v.Driver, v1.DefaultVolumeDriver)
		return source{}, errs
	}
	for _, k := range sortedKeys(v.Opts) {
		if k != "type" && k != "o" && k != "device" {
			errs.Add(".opts."+k, "refused: the local driver's option %q has no counterpart (only type, o and device)", k)
		}
	}
	opts := splitOpts(v.Opts["o"])
	var src source
	switch typ := v.Opts["type"]; typ {
	case "nfs", "nfs4":
		src.NFS = true
		for _, o := range opts {
			if a, ok := strings.CutPrefix(o, "addr="); ok {
				src.Server = a
			} else {
				src.MountOptions = append(src.MountOptions, o)
				src.ReadOnly = src.ReadOnly || o == "ro"
			}
		}
		if typ == "nfs4" && !hasPrefix(src.MountOptions, "nfsvers=", "vers=") {
			src.MountOptions = append(src.MountOptions, "nfsvers=4")
		}
		server, path, _ := strings.Cut(v.Opts["device"], ":")
		if server != "" && src.Server == "" {
			src.Server = server
		}
		src.Path = path
		if src.Server == "" {
			errs.Add(".opts.o", "refused: an NFS volume needs its server as addr=HOST in o (or HOST:/path as device)")
		}
		if !strings.HasPrefix(src.Path, "/") {
			errs.Add(".opts.device", "refused: expected the NFS export as :/path, found %q", v.Opts["device"])
		}
	case "none":
		bind := false
		for _, o := range opts {
			switch o {
			case "bind", "rbind":
				bind = true
			case "ro":
				src.ReadOnly = true
			case "rw":
			default:
				errs.Add(".opts.o", "refused: bind option %q has no hostPath counterpart (only bind, rbind, ro, rw)", o)
			}
		}
		if !bind {
			errs.Add(".opts.o", "refused: type none without bind is no mount Kubernetes can express")
		}
		src.HostPath = v.Opts["device"]
	default:
		errs.Add(".opts.type", "refused: %q cannot be exported; only nfs (a PersistentVolume) and none with o: bind (a hostPath) can", typ)
	}
	if len(errs) > 0 {
		return source{}, errs
	}
	return src, nil
}

func splitOpts(o string) []string {
	var out []string
	for _, s := range strings.Split(o, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func hasPrefix(list []string, prefixes ...string) bool {
	for _, s := range list {
		for _, p := range prefixes {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func pvName(o Options, volume string) string { return o.Namespace + "-" + volume }

// podVolumes are the configuration's volumes as the pods see them, and the
// cluster objects behind them.
type podVolumes struct {
	pvs     []*corev1.PersistentVolume
	pvcs    []*corev1.PersistentVolumeClaim
	volumes []corev1.Volume
	mounts  []corev1.VolumeMount
}

func (b *builder) volumes() podVolumes {
	var out podVolumes
	for _, vn := range b.s.VolumeNames() {
		v := b.s.Volumes[vn]
		src, err := volumeSource(v)
		if err != nil { // refuse() reported it
			continue
		}
		vol := corev1.Volume{Name: vn}
		if src.NFS {
			pv, pvc := b.nfs(vn, src)
			out.pvs = append(out.pvs, pv)
			out.pvcs = append(out.pvcs, pvc)
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}
		} else {
			vol.HostPath = &corev1.HostPathVolumeSource{Path: src.HostPath, Type: ptr(corev1.HostPathDirectory)}
		}
		out.volumes = append(out.volumes, vol)
		out.mounts = append(out.mounts, corev1.VolumeMount{Name: vn, MountPath: v.MountPath(), ReadOnly: src.ReadOnly})
	}
	return out
}

// nfs is a static PersistentVolume with the mount options (an inline nfs
// volume cannot take them) and a claim bound to it both ways: the claim
// names the volume and the empty class, so no default class provisions an
// empty volume instead; the volume reserves itself for the claim.
func (b *builder) nfs(volume string, src source) (*corev1.PersistentVolume, *corev1.PersistentVolumeClaim) {
	size := resource.MustParse(nominalSize)
	modes := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	if src.ReadOnly {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}
	}
	pv := &corev1.PersistentVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: pvName(b.opts, volume), Labels: b.labels()},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes: modes,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				NFS: &corev1.NFSVolumeSource{Server: src.Server, Path: src.Path, ReadOnly: src.ReadOnly},
			},
			MountOptions:                  src.MountOptions,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			ClaimRef:                      &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: b.opts.Namespace, Name: volume},
		},
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: volume, Namespace: b.opts.Namespace, Labels: b.labels()},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      modes,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			VolumeName:       pv.Name,
			StorageClassName: ptr(""),
		},
	}
	return pv, pvc
}

// deviceVolumeName is the pod volume of a device path: "/dev/bus/usb" is
// "dev-bus-usb".
func deviceVolumeName(path string) string {
	var sb strings.Builder
	for _, c := range strings.ToLower(strings.Trim(path, "/")) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			sb.WriteRune(c)
		} else {
			sb.WriteByte('-')
		}
	}
	return "host-" + sb.String()
}

func ptr[T any](v T) *T { return &v }
