// Package controllers keeps every enabled node converged to the spec, as a
// Kubernetes controller does, one part per job:
//
//   - queue.go, ratelimit.go, controller.go, clock.go: the generic core.
//     A work queue with client-go's semantics (a key never processed twice
//     at once, triggers collapse, AddAfter only moves a key earlier), the
//     rate limiter every failure goes through (per node, 1 s doubling to a
//     minute; 10 a second over all nodes), and the workers that run the
//     reconciler and honour its Result.
//   - sources.go, requests.go: sources that only enqueue nodes: engine
//     events (and an engine's event stream coming back), the periodic
//     resync, configuration changes (NodeController.SetSpec) and
//     operators' requests, which wait for the outcome.
//   - imageupdate.go: with image_update_interval, the source that asks
//     the registry (through a node's engine) which digest the image's tag
//     names and pins a new one into the spec in force, so that it rolls
//     out through the same plan and gates as a configuration change.
//   - feeds.go, observecache.go: what a node costs while nothing happens.
//     The event source keeps, per node, whether its stream is up and a
//     generation per kind (containers, volumes, images) moved by each
//     event; while it is up, a pass reads one container list (ListStates)
//     and keeps the inspects, volumes and image of the last pass until an
//     event or fliswarm's own action drops them, and pings only when that
//     list fails or an operator's request waits; the resync then comes
//     every 4 intervals (at most 5 minutes; an interval under 30 s is
//     kept as configured).
//   - expectations.go: the engine events the reconciler's own actions
//     will cause (its `start`, its `create`), which the event source does
//     not reconcile again.
//   - node.go, observe.go, node_steps.go, node_gates.go, execute.go,
//     plan.go: the node reconciler. Reconcile(ctx, node) is one pass:
//     observe (the node read once: observe.go), decide (a camera just
//     started, the rollout history, PlanNode, pure: node_steps.go), gates
//     (crash-loop backoff in crashloop.go, a busy camera, pre-pull, a
//     rollout slot: node_gates.go), act (execute.go) and record, with no
//     loop or sleep: it asks to come back when it waits for a camera to
//     answer, a rollout slot, an idle camera or the end of a backoff.
//     A camera is ready when its camera client is connected (the actor's,
//     reported through NodeController.SetCamera, the one source of
//     readiness; a one-shot reconcile without a daemon has no client and
//     judges by the container running and its port accepting: once.go).
//   - history.go: a node's rollout history, kept on the node so that a
//     restarted fliswarm finds it: the camera a rollout replaced, kept
//     stopped as "<container>-previous" until its successor answers (going
//     back is a rename and a start), and a halt, recorded as a container
//     never started, "<container>-halted", labelled with the halted spec
//     and the reason. No slot is given before every node's history has
//     been read.
//   - adopt.go: adoption. A camera container fliswarm did not create (the
//     Python fliswarm's, without fliswarm's labels) that runs what the
//     spec asks for, as the engine reports it (adoptDiff, pure), is kept
//     and treated as fliswarm's own; one that differs is replaced like a
//     changed spec, the reason naming each difference.
//   - store.go: the one status store: observed status, enable overrides,
//     the camera connection (SetCamera), rollout state; readiness is
//     evaluated when status is read, and subscribers hear of changes.
//   - redeploy.go: an operator's redeploy (the actor's `reconnect`): the
//     image pulled and the container replaced although current, owed to
//     the request until done, each step reported to it as it is taken.
//   - rollout.go: the rollout coordinator: at most max_unavailable nodes
//     replace a running camera at once, each holding its slot until the
//     new camera answers; a failed new camera halts the rollout there, and
//     the node goes back to the camera it replaced.
//   - imagegc.go: image garbage collection at the end of a node's pass:
//     once its camera runs the image the spec asks for (a rollout or an
//     image update ended), images of the camera's repository beyond
//     image_gc.keep are removed, never another repository's nor one a
//     container uses; and the engine's disk use, read every few minutes
//     into the status (above image_gc.high_percent: a warning, and the
//     collection runs then too).
//   - node_controller.go, once.go: NodeController wires the parts and runs
//     them as one group; the same controller serves the daemon and the
//     one-shot `fliswarm reconcile`.
//
// Nothing else in fliswarm creates, starts or removes containers,
// volumes or images: the actor asks the NodeController instead.
package controllers
