package kubernetes

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/render"
)

// Labels and annotations of the exported objects.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelComponent is "camera" or "actor", so that neither selects the
	// other's pods whatever the names.
	LabelComponent = "app.kubernetes.io/component"
	LabelNode      = "fliswarm.sdss.org/node"
	LabelCategory  = "fliswarm.sdss.org/category"
	// LabelSpecHash is render's spec hash of the node's container, the
	// same as the org.sdss.fliswarm.spec-hash label fliswarm puts on it.
	LabelSpecHash = "fliswarm.sdss.org/spec-hash"
	// AnnotationSpec is render's summary of the container as JSON (too
	// long for a label value, which stops at 63 characters).
	AnnotationSpec = "fliswarm.sdss.org/spec"
	// LabelPodSecurity is Pod Security admission's enforced level.
	LabelPodSecurity = "pod-security.kubernetes.io/enforce"
	// HostnameLabel is the label the kubelet puts on its Node.
	HostnameLabel = "kubernetes.io/hostname"
)

// The camera pods' fixed settings.
const (
	// MinReadySeconds a new camera pod must stay ready to count as
	// available.
	MinReadySeconds = 10
	// CPURequest and MemoryRequest are what a camera asks the scheduler
	// for (a limit alone would request the limit, and 3.5 CPUs fit no
	// 2-core node computer); a lower limit lowers them to it.
	CPURequest    = "100m"
	MemoryRequest = "256Mi"
)

func (b *builder) labels() map[string]string {
	return map[string]string{LabelPartOf: "fliswarm", LabelManagedBy: "fliswarm"}
}

func (b *builder) namespace() *corev1.Namespace {
	l := b.labels()
	l[LabelPodSecurity] = "privileged"
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: b.opts.Namespace, Labels: l},
	}
}

// daemonSet runs node's camera: one pod, on that node only.
func (b *builder) daemonSet(node string, c render.Container, vols podVolumes) *appsv1.DaemonSet {
	n := b.s.Nodes[node]
	selector := map[string]string{LabelName: b.s.ContainerName, LabelComponent: "camera", LabelNode: node}
	labels := b.labels()
	for k, v := range selector {
		labels[k] = v
	}
	if n.Category != "" {
		labels[LabelCategory] = n.Category
	}
	podLabels := map[string]string{LabelSpecHash: c.Hash}
	for k, v := range labels {
		podLabels[k] = v
	}
	spec, _ := jsonString(c.Summary)

	var env []corev1.EnvVar
	for _, kv := range c.Summary.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	volumes := append([]corev1.Volume(nil), vols.volumes...)
	mounts := append([]corev1.VolumeMount(nil), vols.mounts...)
	for _, d := range b.s.Devices {
		name := deviceVolumeName(d)
		// A directory such as /dev/bus/usb is bound whole, so a camera
		// plugged in again (and renumbered) is seen; a device file is
		// bound as it is.
		typ := corev1.HostPathUnset
		if d == v1.DefaultDevicePath {
			typ = corev1.HostPathDirectory
		}
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: d, Type: &typ}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: d})
	}
	port := corev1.ContainerPort{Name: "actor", ContainerPort: int32(n.Port), HostPort: int32(n.Port), Protocol: corev1.ProtocolTCP}
	sc := &corev1.SecurityContext{Privileged: ptr(c.Summary.Privileged)}
	if n.DockerUID != nil {
		sc.RunAsUser = ptr(int64(*n.DockerUID))
	}
	if n.DockerGID != nil {
		sc.RunAsGroup = ptr(int64(*n.DockerGID))
	}
	pull := corev1.PullAlways
	if b.s.PullPolicy == v1.PullIfNotPresent {
		pull = corev1.PullIfNotPresent
	}

	ds := &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: c.Name, Namespace: b.opts.Namespace, Labels: labels,
			Annotations: map[string]string{AnnotationSpec: spec},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector:        &metav1.LabelSelector{MatchLabels: selector},
			MinReadySeconds: MinReadySeconds,
			UpdateStrategy:  b.updateStrategy(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{AnnotationSpec: spec}},
				Spec: corev1.PodSpec{
					NodeSelector:  map[string]string{HostnameLabel: hostname(n)},
					HostNetwork:   true,
					DNSPolicy:     corev1.DNSClusterFirstWithHostNet,
					RestartPolicy: corev1.RestartPolicyAlways,
					Volumes:       volumes,
					Containers: []corev1.Container{{
						Name:            b.s.ContainerName,
						Image:           c.Summary.Image,
						ImagePullPolicy: pull,
						Env:             env,
						Ports:           []corev1.ContainerPort{port},
						Resources:       resources(c.Summary),
						VolumeMounts:    mounts,
						SecurityContext: sc,
						// No liveness probe: it would restart a camera in
						// the middle of an exposure.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(n.Port))}},
							PeriodSeconds:    5,
							FailureThreshold: 3,
						},
					}},
				},
			},
		},
	}
	return ds
}

func (b *builder) updateStrategy() appsv1.DaemonSetUpdateStrategy {
	if b.opts.UpdateStrategy == Rolling {
		// maxSurge 0: a second camera pod could bind neither the host port
		// nor the USB camera; the API then wants maxUnavailable ≥ 1.
		return appsv1.DaemonSetUpdateStrategy{
			Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{
				MaxSurge:       ptr(intstr.FromInt32(0)),
				MaxUnavailable: ptr(intstr.FromInt32(1)),
			},
		}
	}
	return appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
}

// resources are the container's limits, with requests small enough to
// schedule on a small node computer (never above the limits).
func resources(s render.Summary) corev1.ResourceRequirements {
	cpu := resource.NewMilliQuantity(s.CPUQuota*1000/render.CPUPeriod, resource.DecimalSI)
	mem := resource.NewQuantity(s.MemoryBytes, resource.BinarySI)
	reqCPU, reqMem := resource.MustParse(CPURequest), resource.MustParse(MemoryRequest)
	if cpu.Cmp(reqCPU) < 0 {
		reqCPU = cpu.DeepCopy()
	}
	if mem.Cmp(reqMem) < 0 {
		reqMem = mem.DeepCopy()
	}
	return corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: *cpu, corev1.ResourceMemory: *mem},
		Requests: corev1.ResourceList{corev1.ResourceCPU: reqCPU, corev1.ResourceMemory: reqMem},
	}
}
