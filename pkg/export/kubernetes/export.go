package kubernetes

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/render"
)

// Update strategies of the camera DaemonSets.
const (
	// OnDelete: a changed DaemonSet replaces a node's pod only when the pod
	// is deleted, so the operator (or fliswarm) picks the moment: a camera
	// that is not exposing, one node at a time. The default.
	OnDelete = "ondelete"
	// Rolling: RollingUpdate with maxSurge 0 and maxUnavailable 1; every
	// node's DaemonSet replaces its pod as soon as it changes.
	Rolling = "rolling"
)

// Options are the export's choices that are not in the configuration.
type Options struct {
	// Namespace of every namespaced object. Default "fliswarm".
	Namespace string
	// UpdateStrategy is OnDelete (default) or Rolling.
	UpdateStrategy string
	// ActorImage is the image of the actor bridge. Default
	// "<registry>/sdss5/fliswarm:latest" ("sdss5/fliswarm:latest" without
	// a registry).
	ActorImage string
}

// Defaults of Options.
const (
	DefaultNamespace  = "fliswarm"
	DefaultActorImage = "sdss5/fliswarm:latest"
)

func (o *Options) setDefaults(s *v1.Swarm) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.UpdateStrategy == "" {
		o.UpdateStrategy = OnDelete
	}
	if o.ActorImage == "" {
		o.ActorImage = DefaultActorImage
		if s.Registry != "" {
			o.ActorImage = s.Registry + "/" + DefaultActorImage
		}
	}
}

// Object is one exported object.
type Object struct {
	// Kind and Name identify it; Order sorts the kinds so that an object
	// comes after those it needs (the Namespace first).
	Kind, Name string
	Order      int
	Obj        runtime.Object
}

// FileName is the object's file in an export directory: its order, kind
// and name, so that `kubectl apply -f DIR` creates the Namespace first.
func (o Object) FileName() string {
	return fmt.Sprintf("%02d-%s-%s.yaml", o.Order, strings.ToLower(o.Kind), o.Name)
}

// Build turns a defaulted, validated spec into the objects that run its
// cameras under Kubernetes, sorted by order, kind and name. paths locate
// the node sections in the configuration file, for messages. Every setting
// that cannot be expressed is reported, with its path, in one v1.ErrorList.
func Build(s *v1.Swarm, paths v1.Paths, opts Options) ([]Object, error) {
	opts.setDefaults(s)
	var errs v1.ErrorList
	refuse(s, paths, opts, &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	b := &builder{s: s, paths: paths, opts: opts, errs: &errs}
	objs := b.objects()
	if len(errs) > 0 {
		return nil, errs
	}
	sort.Slice(objs, func(i, j int) bool {
		a, c := objs[i], objs[j]
		if a.Order != c.Order {
			return a.Order < c.Order
		}
		if a.Kind != c.Kind {
			return a.Kind < c.Kind
		}
		return a.Name < c.Name
	})
	return objs, nil
}

type builder struct {
	s     *v1.Swarm
	paths v1.Paths
	opts  Options
	errs  *v1.ErrorList
}

func (b *builder) objects() []Object {
	out := []Object{{Kind: "Namespace", Name: b.opts.Namespace, Order: 0, Obj: b.namespace()}}
	vols := b.volumes()
	for _, pv := range vols.pvs {
		out = append(out, Object{Kind: "PersistentVolume", Name: pv.Name, Order: 10, Obj: pv})
	}
	for _, pvc := range vols.pvcs {
		out = append(out, Object{Kind: "PersistentVolumeClaim", Name: pvc.Name, Order: 20, Obj: pvc})
	}
	cm := b.configMap()
	out = append(out,
		Object{Kind: "ConfigMap", Name: cm.Name, Order: 30, Obj: cm},
		Object{Kind: "Service", Name: b.s.Actor.Name, Order: 40, Obj: b.service()},
		Object{Kind: "Deployment", Name: b.s.Actor.Name, Order: 50, Obj: b.deployment(cm)},
	)
	for _, node := range b.s.EnabledNodes {
		c, err := render.ForNode(b.s, node)
		if err != nil {
			b.errs.Add(b.paths.Nodes+"."+node, "%v", err)
			continue
		}
		ds := b.daemonSet(node, c, vols)
		out = append(out, Object{Kind: "DaemonSet", Name: ds.Name, Order: 60, Obj: ds})
	}
	return out
}
