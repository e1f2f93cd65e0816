# hack/testbed-secure.bash: the test bed's TLS and ssh nodes. Sourced by
# hack/testbed (not run on its own); uses its settings and helpers.
#
# TESTBED_TLS_NODES names nodes whose engine listens on tcp://IP:2376 with
# --tlsverify, with certificates the bed makes with openssl under
# $TESTBED_DIR/tls: a CA, a server certificate per TLS node (the node's IP
# as subjectAltName) and one client certificate, in Docker's
# DOCKER_CERT_PATH layout ($TESTBED_DIR/tls/client: ca.pem, cert.pem,
# key.pem).
#
# TESTBED_SSH_NODES names nodes whose engine listens on its unix socket
# only, reached over ssh://root@IP/<socket>: an sshd (Debian's
# openssh-server) runs in the node's namespace with its own configuration
# and host key under $TESTBED_DIR/nodes/<node>/sshd; the bed makes a key
# pair for root ($TESTBED_DIR/ssh/id_ed25519, authorized through
# $TESTBED_DIR/ssh/authorized_keys) and writes $TESTBED_DIR/ssh/known_hosts.
#
# Every other node is plain: tcp://IP:2375. With neither variable set the
# bed is exactly the default one.

read -r -a TLS_NODES <<<"$TESTBED_TLS_NODES"
read -r -a SSH_NODES <<<"$TESTBED_SSH_NODES"
TLS_DIR="$TESTBED_DIR/tls"
TLS_CLIENT_DIR="$TLS_DIR/client"
SSH_DIR="$TESTBED_DIR/ssh"
SSH_KEY="$SSH_DIR/id_ed25519"
SSH_KNOWN_HOSTS="$SSH_DIR/known_hosts"

in_list() { # WORD LIST...
	local w=$1 x
	shift
	for x; do [[ $x == "$w" ]] && return 0; done
	return 1
}

# node_kind NODE: plain, tls or ssh.
node_kind() {
	if [[ ${#TLS_NODES[@]} -gt 0 ]] && in_list "$1" "${TLS_NODES[@]}"; then
		echo tls
	elif [[ ${#SSH_NODES[@]} -gt 0 ]] && in_list "$1" "${SSH_NODES[@]}"; then
		echo ssh
	else
		echo plain
	fi
}

# node_kind_label NODE: the status line's name for the network check.
node_kind_label() {
	case $(node_kind "$1") in
	tls) echo tls ;;
	ssh) echo ssh ;;
	*) echo tcp ;;
	esac
}

# node_docker_host NODE: the engine's address as fliswarm reaches it.
node_docker_host() {
	local ip
	ip=$(node_ip "$1")
	case $(node_kind "$1") in
	tls) echo "tcp://$ip:2376" ;;
	ssh) echo "ssh://root@$ip$(node_sock "$1")" ;;
	*) echo "tcp://$ip:2375" ;;
	esac
}

validate_secure_nodes() {
	local n
	for n in "${TLS_NODES[@]}" "${SSH_NODES[@]}"; do
		node_index "$n" >/dev/null || die "TESTBED_TLS_NODES/TESTBED_SSH_NODES name '$n', which is not in TESTBED_NODES (${NODES[*]})"
	done
	for n in "${TLS_NODES[@]}"; do
		if [[ ${#SSH_NODES[@]} -gt 0 ]] && in_list "$n" "${SSH_NODES[@]}"; then
			die "node '$n' is in both TESTBED_TLS_NODES and TESTBED_SSH_NODES"
		fi
	done
	return 0
}

# engine_listen_args NODE: dockerd's network listener for the node's kind.
engine_listen_args() {
	local n=$1 ip
	ip=$(node_ip "$n")
	case $(node_kind "$n") in
	tls) echo "-H tcp://$ip:2376 --tlsverify --tlscacert $TLS_DIR/ca.pem --tlscert $TLS_DIR/nodes/$n/cert.pem --tlskey $TLS_DIR/nodes/$n/key.pem" ;;
	ssh) echo "" ;; # the unix socket only; sshd forwards to it
	*) echo "-H tcp://$ip:2375 --tls=false" ;;
	esac
}

# node_reachable NODE: the engine answers at its network address.
node_reachable() {
	local ip
	ip=$(node_ip "$1")
	case $(node_kind "$1") in
	tls)
		[[ $(curl -sf --noproxy '*' --connect-timeout 2 --max-time 3 --cacert "$TLS_CLIENT_DIR/ca.pem" \
			--cert "$TLS_CLIENT_DIR/cert.pem" --key "$TLS_CLIENT_DIR/key.pem" "https://$ip:2376/_ping" 2>/dev/null) == OK ]]
		;;
	ssh) ssh_ok "$1" ;;
	*) ping_tcp "$ip" ;;
	esac
}

# ------------------------------------------------------------ installation
have_secure_tools() {
	if [[ ${#TLS_NODES[@]} -gt 0 ]]; then command -v openssl >/dev/null || return 1; fi
	if [[ ${#SSH_NODES[@]} -gt 0 ]]; then
		[[ -x /usr/sbin/sshd ]] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || return 1
	fi
	return 0
}

# ensure_secure_tools: openssl and openssh-server from Debian, when needed.
ensure_secure_tools() {
	local pkgs=() policy_created=0 _
	have_secure_tools && return 0
	command -v apt-get >/dev/null || die "openssl and openssh-server are needed for TLS and ssh nodes (no apt-get here)"
	[[ ${#TLS_NODES[@]} -gt 0 ]] && pkgs+=(openssl)
	[[ ${#SSH_NODES[@]} -gt 0 ]] && pkgs+=(openssh-server openssh-client)
	log "installing ${pkgs[*]} with apt-get"
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		# never start the system's own sshd: the bed runs its own, per node
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy_created=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	for _ in 1 2 3; do
		wait_apt
		if run apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${pkgs[@]}"; then
			break
		fi
		wait_apt
		run apt-get -o DPkg::Lock::Timeout=600 update || true
	done
	((policy_created)) && rm -f /usr/sbin/policy-rc.d
	have_secure_tools || die "apt-get install ${pkgs[*]} failed; see $LOG"
}

# ---------------------------------------------------------------- material
ensure_secure_material() {
	[[ ${#TLS_NODES[@]} -eq 0 ]] || ensure_pki
	[[ ${#SSH_NODES[@]} -eq 0 ]] || ensure_ssh_keys
	return 0
}

# issue_cert DIR CN EXT: a key and a certificate signed by the bed's CA.
issue_cert() {
	local dir=$1 cn=$2 ext=$3
	mkdir -p "$dir"
	printf '%s\n' "$ext" >"$dir/ext.cnf"
	run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/key.pem" -out "$dir/req.csr" -subj "/CN=$cn"
	run openssl x509 -req -in "$dir/req.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca-key.pem" \
		-set_serial "0x$(openssl rand -hex 12)" -days 3650 -extfile "$dir/ext.cnf" -out "$dir/cert.pem"
	rm -f "$dir/req.csr"
	chmod 0600 "$dir/key.pem"
}

# ensure_pki: the CA, a server certificate per TLS node (kept while its
# IP matches) and the client's DOCKER_CERT_PATH directory.
ensure_pki() {
	local n ip dir
	if [[ ! -s $TLS_DIR/ca.pem || ! -s $TLS_DIR/ca-key.pem ]]; then
		log "tls: making the bed's CA in $TLS_DIR"
		rm -rf "$TLS_DIR"
		mkdir -p "$TLS_DIR"
		run openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$TLS_DIR/ca-key.pem" -out "$TLS_DIR/ca.pem" -days 3650 -subj "/CN=fliswarm testbed CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
		chmod 0600 "$TLS_DIR/ca-key.pem"
	fi
	for n in "${TLS_NODES[@]}"; do
		ip=$(node_ip "$n")
		dir="$TLS_DIR/nodes/$n"
		if [[ -s $dir/cert.pem && -s $dir/key.pem && $(<"$dir/ip") == "$ip" ]] 2>/dev/null; then
			continue
		fi
		log "tls: server certificate of $n for IP $ip"
		issue_cert "$dir" "$n" "subjectAltName=IP:$ip
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
		echo "$ip" >"$dir/ip"
	done
	if [[ ! -s $TLS_CLIENT_DIR/cert.pem || ! -s $TLS_CLIENT_DIR/key.pem ]]; then
		log "tls: client certificate in $TLS_CLIENT_DIR"
		issue_cert "$TLS_CLIENT_DIR" fliswarm "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
	fi
	cp -f "$TLS_DIR/ca.pem" "$TLS_CLIENT_DIR/ca.pem"
}

# ensure_ssh_keys: root's key pair and each ssh node's host key.
ensure_ssh_keys() {
	local n
	mkdir -p "$SSH_DIR"
	chmod 0700 "$SSH_DIR"
	if [[ ! -s $SSH_KEY || ! -s $SSH_KEY.pub ]]; then
		rm -f "$SSH_KEY" "$SSH_KEY.pub"
		run ssh-keygen -q -t ed25519 -N '' -C "fliswarm-testbed" -f "$SSH_KEY"
	fi
	cp -f "$SSH_KEY.pub" "$SSH_DIR/authorized_keys"
	for n in "${SSH_NODES[@]}"; do
		local d="$TESTBED_DIR/nodes/$n/sshd"
		mkdir -p "$d"
		if [[ ! -s $d/ssh_host_ed25519_key ]]; then
			rm -f "$d/ssh_host_ed25519_key" "$d/ssh_host_ed25519_key.pub"
			run ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$d/ssh_host_ed25519_key"
		fi
	done
	write_known_hosts
}

write_known_hosts() {
	local n key
	for n in "${SSH_NODES[@]}"; do
		read -r key <"$TESTBED_DIR/nodes/$n/sshd/ssh_host_ed25519_key.pub"
		# "type base64 comment": keep type and key
		echo "$(node_ip "$n") ${key% *}"
	done >"$SSH_KNOWN_HOSTS.tmp"
	mv -f "$SSH_KNOWN_HOSTS.tmp" "$SSH_KNOWN_HOSTS"
}

# -------------------------------------------------------------------- sshd
sshd_pidfile() { echo "$(node_run_dir "$1")/sshd.pid"; }

# write_sshd_config NODE: writes the node's sshd_config; fails (1) when
# it changed (a running sshd must then be restarted).
write_sshd_config() {
	local n=$1 d="$TESTBED_DIR/nodes/$1/sshd"
	cat >"$d/sshd_config.new" <<EOF
# written by hack/testbed for node $n
ListenAddress $(node_ip "$n")
Port 22
HostKey $d/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
# sshd lets a client open unix sockets (streamlocal) only when it permits
# local TCP forwarding too
AllowTcpForwarding local
X11Forwarding no
PermitTTY no
PrintMotd no
LogLevel INFO
EOF
	if cmp -s "$d/sshd_config.new" "$d/sshd_config"; then
		rm -f "$d/sshd_config.new"
		return 0
	fi
	mv -f "$d/sshd_config.new" "$d/sshd_config"
	return 1
}

# ssh_ok NODE: root logs in with the bed's key, checking the host key.
ssh_ok() {
	ssh -F /dev/null -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=3 \
		-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
		"root@$(node_ip "$1")" true </dev/null >/dev/null 2>&1
}

sshd_alive() { pid_alive "$(pidfile_pid "$(sshd_pidfile "$1")")"; }

# start_sshd NODE: sshd in the node's namespace, in the foreground of its
# own session (nsenter execs it, so $! is sshd).
start_sshd() {
	local n=$1 run
	run=$(node_run_dir "$n")
	mkdir -p "$run" /run/sshd
	chmod 0755 /run/sshd # sshd's privilege separation directory
	write_sshd_config "$n" || true
	log "node $n: starting sshd in $(netns_of "$n") at $(node_ip "$n"):22"
	setsid nsenter --net="/run/netns/$(netns_of "$n")" /usr/sbin/sshd -D -e \
		-f "$TESTBED_DIR/nodes/$n/sshd/sshd_config" \
		</dev/null >>"$TESTBED_DIR/nodes/$n/sshd.log" 2>&1 9>&- &
	echo $! >"$(sshd_pidfile "$n")"
}

# ensure_sshds: every ssh node's sshd runs and lets root in; a dead or
# stale one is replaced.
ensure_sshds() {
	local n deadline p
	[[ ${#SSH_NODES[@]} -gt 0 ]] || return 0
	for n in "${SSH_NODES[@]}"; do
		if write_sshd_config "$n" && sshd_alive "$n" && ssh_ok "$n"; then
			continue
		fi
		p=$(pidfile_pid "$(sshd_pidfile "$n")")
		if [[ -n $p && $(comm_of "$p") == sshd ]]; then stop_pids 5 "$p"; fi
		start_sshd "$n"
		deadline=$((SECONDS + 30))
		until ssh_ok "$n"; do
			if ! sshd_alive "$n" || ((SECONDS >= deadline)); then
				tail -n 5 "$TESTBED_DIR/nodes/$n/sshd.log" >&2 2>/dev/null || true
				die "sshd of $n does not let root in (log $TESTBED_DIR/nodes/$n/sshd.log)"
			fi
			sleep 0.2
		done
	done
}

# ------------------------------------------------------------------ config
# node_config_extra NODE: the node's own settings in fliswarm.yaml.
node_config_extra() {
	case $(node_kind "$1") in
	tls) echo ", tls: {cert_path: $TLS_CLIENT_DIR, verify: true}" ;;
	*) echo "" ;;
	esac
}

# global_config_extra: the ssh settings every ssh node uses.
global_config_extra() {
	if [[ ${#SSH_NODES[@]} -gt 0 ]]; then
		echo "ssh: {identity_file: $SSH_KEY, known_hosts: $SSH_KNOWN_HOSTS}"
	fi
	return 0
}

secure_env() {
	q TESTBED_TLS_NODES "${TLS_NODES[*]}"
	q TESTBED_SSH_NODES "${SSH_NODES[*]}"
	if [[ ${#TLS_NODES[@]} -gt 0 ]]; then q TESTBED_TLS_CERT_PATH "$TLS_CLIENT_DIR"; fi
	if [[ ${#SSH_NODES[@]} -gt 0 ]]; then
		q TESTBED_SSH_IDENTITY "$SSH_KEY"
		q TESTBED_SSH_KNOWN_HOSTS "$SSH_KNOWN_HOSTS"
	fi
	return 0
}
