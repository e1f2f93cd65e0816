// Package actor is fliswarm's actor bridge, in three parts, each a
// long-running part with a blocking Start(ctx) that the manager runs:
//
//   - Actor (actor.go) serves the opscore actor that tron and operators
//     talk to and runs its commands: the command framework (commands.go:
//     table, parsing, usage, help, ping, version), status (status.go),
//     talk (talk.go; the common one-camera talk started without a
//     goroutine of its own, its replies and end relayed from the camera's
//     reader, in talkfast.go), reconnect (reconnect.go), enable and disable
//     (enable.go), reboot, simulate, get_schema and keyword, logs (logs.go:
//     a camera's last lines, read through the Logs it is given), and the
//     periodic status broadcast (periodic.go).
//   - Cameras (cameras.go) keeps one device client per enabled camera,
//     following the status store's subscription, records each client's
//     connection in the store (SetCamera, the one source of "camera
//     connected"), knows whether a camera is exposing (busy.go), and hands
//     the cameras' unsolicited replies to the actor, which relays them
//     upstream with the node's name prepended.
//   - HubLink (hublink.go) keeps a client connection to the tron hub of
//     the spec in force, for commanding other actors (a hard reboot
//     through the power actor). On every connection to the hub it sends
//     `hub startNubs <actor>` as CLU does, so that tron connects back to
//     the actor port after any start (tron.go); status's hub= keyword
//     says whether that connection is up and when the hub's host last
//     connected to the actor port (hub.go: a user is tron when its peer
//     address is one of the hub host's addresses).
//
// The spec has one owner, the controller's status store: every part reads
// it from there (Reconciler.Spec, Nodes.Spec) and follows its changes
// through the store's subscription; none keeps a copy.
//
// Replies follow the original Python fliswarm (sdss/fliswarm commands.py,
// node.py) and CLU: the status warnings' wording and order, "Failed
// connecting to X." in talk, the periodic status run as a whole command
// broadcast to every user (`0 0 >` ... `0 0 :`, like CLU's timed
// commands), simulate as a cancellable command, help as click prints it
// for a CLU actor (`help` lists the commands one line each; `help CMD`,
// `CMD --help` and a usage error print the command's usage and options),
// one `help="..."` warning per line of text. talk reads its words as click
// reads the original's talk (talkargs.go): -n/-c anywhere, `--` ending
// them, unknown options kept as camera words, the words joined with single
// spaces. Where the original could hang
// or hide a failure, this package ends the command: talk fails when no
// camera finished the command successfully, and reconnect and reboot fail
// naming the nodes that did not come back. reconnect redeploys (the
// reconciler pulls the image and replaces the container even when current)
// and words each step the reconciler reports as the original did
// (deploy.go).
//
// Every keyword the actor writes itself is in the keyword dictionary tron
// decodes fliswarm with or is one of fliswarm's additions; keywords.go
// holds them as a table, from which get_schema (a JSON schema, as CLU's)
// and keyword answer and against which the dictionary test checks every
// reply: a failure is `error=<node or the actor's name>,"<message>"`. Relaying a camera reply
// (relay.go) prepends the node's name to every value, softens the camera's
// lifecycle codes (`>` d, `:` i, `f`/`e`/`!` w), writes a camera help
// keyword one line per value (help=<node>,"<line>"; the original wrote
// help=<node> once and then help="<line>" lines without the node, and
// dropped the reply's other keywords), and renames a camera keyword called `raw` (in
// any case: opscore reserves it for raw text) to `camRaw`. A camera line
// that cannot be decoded reaches the user (or, with no command id, every
// user) as `w text=<node>,"undecodable camera line: ..."`.
//
// Replies go to who asked: a camera's replies to a command go only to the
// user who sent it, and once that user is gone they are discarded (counted
// by the camera client), never broadcast; only the camera's own
// unsolicited messages are broadcast. A camera client counts as connected
// only once the actor answering on its port says it is the node's camera,
// and is dropped when it stops answering pings (see pkg/device); talk skips
// a camera that is not connected at once, and status says why
// (CameraState). SetConfigError makes a rejected configuration edit known
// to every user and to status.
//
// The package must not touch Docker or the nodes' containers: it asks the
// Reconciler (declared here, implemented by controllers.NodeController) to
// converge, enable or disable nodes, and reads the node status the
// reconciler keeps; a camera's output comes through Logs (the daemon's
// manager). It must not hold a command open forever: every command
// ends with exactly one terminal reply, whatever the cameras, the hub or the
// nodes do. A camera command has no time limit unless command_timeout is
// set (as in the original): it ends when the camera answers, when its
// connection drops or the camera stops answering the liveness pings, or
// when its node is disabled. A hard reboot sends power-on to every
// selected node whatever failed before, and finishes its cycle even when
// the user that asked is gone.
package actor
