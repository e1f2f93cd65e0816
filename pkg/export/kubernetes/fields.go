package kubernetes

// Fate is what the export does with a configuration field.
type Fate string

// The fates of a field.
const (
	// Mapped: the field is carried into the objects (the note says where).
	Mapped Fate = "mapped"
	// NotApplicable: the field has no counterpart in a cluster, for the
	// reason in the note; any value exports.
	NotApplicable Fate = "not applicable"
	// Refused: some values cannot be expressed (the note says which); a
	// configuration holding one ends the export with the field's path.
	Refused Fate = "refused"
)

// Field is one row of the table.
type Field struct {
	Fate Fate
	Note string
}

// Fields maps every field reachable from v1.Swarm, by its configuration
// path (map keys as "*", a field without a key by its Go name), to its
// fate. A test walks the types and fails on a field missing here, so a new
// setting cannot be dropped silently.
var Fields = map[string]Field{
	"actor.name":            {Mapped, "actor Deployment, Service and ConfigMap names; the ConfigMap"},
	"actor.host":            {Mapped, "the ConfigMap, as 0.0.0.0: the actor listens on its pod's address, behind the Service"},
	"actor.port":            {Mapped, "the actor's containerPort, the Service port and the ConfigMap"},
	"actor.tron_host":       {Mapped, "the ConfigMap"},
	"actor.tron_port":       {Mapped, "the ConfigMap"},
	"actor.log_dir":         {NotApplicable, "a directory of the manager computer; in the cluster the actor logs to stderr, kept by the kubelet (kubectl logs), so the ConfigMap sets none"},
	"actor.allow":           {Mapped, "the ConfigMap (a ClusterIP Service keeps the client's address)"},
	"actor.max_users":       {Mapped, "the ConfigMap"},
	"actor.max_line_length": {Mapped, "the ConfigMap"},
	"actor.stall_timeout":   {Mapped, "the ConfigMap"},
	"actor.max_backlog":     {Mapped, "the ConfigMap"},

	"registry":       {Mapped, "the image reference of every camera container"},
	"image":          {Mapped, "the image reference of every camera container"},
	"container_name": {Mapped, "the DaemonSet names (<container_name>-<node>) and the container name"},
	"ping_timeout":   {Mapped, "the ConfigMap (the actor's pings)"},
	"observatory":    {Mapped, "OBSERVATORY in every camera's env and the actor's"},
	"enabled_nodes":  {Mapped, "one DaemonSet per enabled node"},

	"nodes.*.host":                {Mapped, "the ConfigMap (the actor reaches the camera there) and the default kubernetes_hostname"},
	"nodes.*.port":                {Mapped, "containerPort = hostPort, the readiness probe and the ConfigMap"},
	"nodes.*.docker-client":       {NotApplicable, "the kubelet runs the containers, not fliswarm through Docker"},
	"nodes.*.tls.cert_path":       {NotApplicable, "TLS to a Docker Engine; the kubelet runs the containers"},
	"nodes.*.tls.verify":          {NotApplicable, "TLS to a Docker Engine; the kubelet runs the containers"},
	"nodes.*.tls.disabled":        {NotApplicable, "TLS to a Docker Engine; the kubelet runs the containers"},
	"nodes.*.ssh.identity_file":   {NotApplicable, "ssh to a Docker Engine; the kubelet runs the containers"},
	"nodes.*.ssh.known_hosts":     {NotApplicable, "ssh to a Docker Engine; the kubelet runs the containers"},
	"nodes.*.category":            {Mapped, "the fliswarm.sdss.org/category label and the ConfigMap"},
	"nodes.*.user":                {Mapped, "the ConfigMap (soft reboots by the actor)"},
	"nodes.*.docker-uid":          {Mapped, "runAsUser"},
	"nodes.*.docker-gid":          {Mapped, "runAsGroup"},
	"nodes.*.power.device":        {Mapped, "the ConfigMap (hard reboots by the actor)"},
	"nodes.*.env":                 {Mapped, "the camera container's env, over the global env"},
	"nodes.*.kubernetes_hostname": {Mapped, "nodeSelector kubernetes.io/hostname"},
	"volumes.*.driver":            {Refused, "any driver but local: a volume plugin of Docker has no Kubernetes counterpart"},
	"volumes.*.opts":              {Refused, "opts other than an NFS mount (type: nfs, o: addr=...) or a bind (type: none, o: bind): NFS becomes a PersistentVolume with its mount options and a claim bound to it, a bind a hostPath"},
	"resources.cpus":              {Mapped, "limits.cpu, with a small explicit request"},
	"resources.memory":            {Mapped, "limits.memory, with a small explicit request"},
	"privileged":                  {Mapped, "securityContext.privileged"},
	"network_mode":                {Refused, "anything but host: the camera actor must listen on its node's address (hostNetwork)"},
	"devices":                     {Refused, "devices when privileged is false: Kubernetes maps no device into an unprivileged container without a device plugin; privileged, each is a hostPath mounted at the same path"},
	"env":                         {Mapped, "every camera container's env"},
	"pull_policy":                 {Mapped, "imagePullPolicy (Always, IfNotPresent)"},
	"restart_policy":              {NotApplicable, "a DaemonSet's pods always restart: the kubelet restarts an exited camera after a back-off of 10 s doubling to 5 min"},
	"resync_interval":             {NotApplicable, "the DaemonSet controller and kubelet watch; there is no resync to set"},
	"max_unavailable":             {Refused, "with --update-strategy=rolling, a value below the number of enabled nodes: the nodes' DaemonSets roll all at once; with OnDelete (the default) the operator replaces one node's pod at a time"},
	"ready_timeout":               {NotApplicable, "a DaemonSet rollout has no deadline; readiness is the tcpSocket probe on the camera port and minReadySeconds"},
	"update_wait":                 {NotApplicable, "with OnDelete the operator deletes a pod once its camera is idle; the cluster knows no exposures"},
	"image_update_interval":       {Refused, "a positive value: the cluster does not follow a tag; push a new tag and export again"},
	"pull_stall_timeout":          {NotApplicable, "the kubelet pulls the image and retries with its own back-off"},
	"command_timeout":             {Mapped, "the ConfigMap"},
	"status_interval":             {Mapped, "the ConfigMap"},
	"events_per_node":             {Mapped, "the ConfigMap (the actor keeps the events of what it sees; Kubernetes records its own: kubectl get events)"},
	"image_gc.keep":               {NotApplicable, "the kubelet collects unused images itself (its imageGCHighThresholdPercent and imageMaximumGCAge)"},
	"image_gc.high_percent":       {NotApplicable, "the kubelet collects unused images itself (its imageGCHighThresholdPercent)"},
	"http":                        {Mapped, "the ConfigMap (the status page in the actor's pod)"},
	"tls.cert_path":               {NotApplicable, "TLS to the Docker Engines; the kubelet runs the containers"},
	"tls.verify":                  {NotApplicable, "TLS to the Docker Engines; the kubelet runs the containers"},
	"tls.disabled":                {NotApplicable, "TLS to the Docker Engines; the kubelet runs the containers"},
	"ssh.identity_file":           {NotApplicable, "ssh to the Docker Engines; the kubelet runs the containers"},
	"ssh.known_hosts":             {NotApplicable, "ssh to the Docker Engines; the kubelet runs the containers"},
	"registry_auth.username":      {Refused, "when set: pulling with credentials needs an imagePullSecret, and a password has no place in exported files; create the Secret in the cluster and add it yourself"},
	"registry_auth.password":      {Refused, "when set: see registry_auth.username"},
	"registry_auth.password_file": {Refused, "when set: see registry_auth.username"},
	"power.actor":                 {Mapped, "the ConfigMap (hard reboots by the actor)"},
	"power.command.poweron":       {Mapped, "the ConfigMap"},
	"power.command.poweroff":      {Mapped, "the ConfigMap"},
	"reboot_command":              {Mapped, "the ConfigMap"},
	"ImageDigest":                 {NotApplicable, "not configured: the digest the daemon last read from the registry"},
}
