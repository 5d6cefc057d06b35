#!/bin/sh
# netifd protocol handler "nemo": the interface of nemod's tunnel. nemod
# creates the device, registers with the home agent and reports addresses,
# prefixes and routes to netifd itself (ubus call network.interface
# notify_proto); netifd only has to know the protocol exists.

[ -n "$INCLUDE_ONLY" ] || {
	# shellcheck source=/dev/null
	. /lib/functions.sh
	# shellcheck source=/dev/null
	. ../netifd-proto.sh
	init_proto "$@"
}

proto_nemo_init_config() {
	# Read by init_proto's dump: no device to wait for (nemod makes it),
	# always available, no protocol task for netifd to run and watch.
	# shellcheck disable=SC2034
	no_device=1
	# shellcheck disable=SC2034
	available=1
	# shellcheck disable=SC2034
	no_proto_task=1
}

proto_nemo_setup() {
	# Nothing to do: nemod drives the interface.
	return 0
}

proto_nemo_teardown() {
	# nemod de-registers when it is stopped; netifd's teardown must not
	# take the tunnel from under it.
	return 0
}

[ -n "$INCLUDE_ONLY" ] || {
	add_protocol nemo
}
