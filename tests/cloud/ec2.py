"""The test VPC's EC2 API: moto's server (moto[server] 5.2.5, pinned by tests/run.sh),
made to behave as EC2 does where the CNI plugin's tests need it, driving the "cloud"
network namespace it runs in from EC2's state after every change.

Run inside the cloud namespace:

    python tests/cloud/ec2.py --host 203.0.113.100 --port 5000 --faults FILE

Where moto 5.2.5 differs from EC2's documented behaviour, this patches it:
- AssignPrivateIpAddresses ignores AllowReassignment (the address stays on both ENIs):
  here an address held by another ENI is moved (with AllowReassignment; refused with
  InvalidParameterValue without it), and an Elastic IP associated with it moves along
  ("When you move a secondary private IP address to another network interface, any
  Elastic IP address that is associated with the IP address is also moved").
- AssignIpv6Addresses assigns an address another ENI holds: refused here.
- AssociateAddress ignores PrivateIpAddress (the Elastic IP lands on the primary
  address) and marks the ENI's primary address as associated: here the association
  is with the private address asked for (the primary one when none is given), and
  DescribeAddresses reports it.
- UnassignPrivateIpAddresses keeps an Elastic IP associated with the address: here it
  is disassociated.
- the filter addresses.private-ip-address matches primary addresses only: here every
  private address; ipv6-addresses.ipv6-address is missing: here it matches.
- AllocateAddress hands out 127.x.y.z: here 198.51.100.10 to 198.51.100.250.

Fault injection (the tests' "API that answers errors or not at all"): before each
request the JSON file --faults (if present) is read: {"Action": {"code": "...",
"message": "...", "status": 503, "times": N}} answers Action with that error N times
(every time without "times"); {"Action": {"hang": true}} accepts and never answers.

The cloud: after every successful change (any action but Describe*), the namespace is
brought to EC2's state. Each ENI tagged cloud-link=LINK is the node behind LINK:
- netdev ingress on LINK drops frames whose source MAC is not the ENI's, and packets
  whose source address is not one of the ENI's (EC2's source/destination check);
  IPv6 link-local sources pass (neighbour discovery);
- each address of the ENI (primary, secondary, IPv6) is routed to LINK and pinned to
  the ENI's MAC (delivery to the ENI holding it, no ARP/NDP asked);
- an Elastic IP associated with a private address is that address towards the
  servers (the interface named by --internet): SNAT out, DNAT in.
"""

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
from io import BytesIO
from urllib.parse import parse_qs

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models import elastic_ip_addresses as eip_models
from moto.ec2.models import elastic_network_interfaces as eni_models
from moto.ec2.responses.elastic_ip_addresses import ElasticIPAddresses
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

LOCK = threading.Lock()


def backends():
    for regions in ec2_backends.values():
        yield from regions.values()


# --- EC2's behaviour -------------------------------------------------------------

EIP_POOL = [f"198.51.100.{n}" for n in range(10, 251)]


def documentation_ip():
    taken = {a.public_ip for b in backends() for a in b.addresses}
    for ip in EIP_POOL:
        if ip not in taken:
            return ip
    raise EC2ClientError("AddressLimitExceeded", "the test pool is exhausted")


eip_models.random_ip = documentation_ip


def private_ips(eni):
    return [a["PrivateIpAddress"] for a in eni.private_ip_addresses]


ORIGINAL_ENI_FILTER = eni_models.NetworkInterface.get_filter_value


def eni_filter(self, name, method_name=None):
    if name == "addresses.private-ip-address":
        return private_ips(self)
    if name == "ipv6-addresses.ipv6-address":
        return list(self.ipv6_addresses)
    if name == "mac-address":
        return self.mac_address
    return ORIGINAL_ENI_FILTER(self, name, method_name)


eni_models.NetworkInterface.get_filter_value = eni_filter

# The private address each Elastic IP is associated with (allocation -> address).
ASSOCIATED = {}

eip_models.ElasticAddress.private_ip_address = property(
    lambda self: ASSOCIATED.get(self.allocation_id) if self.eni else None
)


def holder_of(backend, ip, but):
    return [e for e in backend.enis.values() if e.id != but.id and ip in private_ips(e)]


def assign_private(self):
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    wanted = self._get_param("PrivateIpAddresses", [])
    allow = str(self._get_param("AllowReassignment", False)).lower() == "true"
    if not wanted:
        raise EC2ClientError("InvalidParameterValue", "the tests assign addresses by name")
    for ip in wanted:
        if ip in private_ips(eni):
            continue
        for other in holder_of(self.ec2_backend, ip, eni):
            if not allow:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Address {ip} is in use by {other.id}; use AllowReassignment",
                )
            other.private_ip_addresses = [
                a for a in other.private_ip_addresses if a["PrivateIpAddress"] != ip
            ]
            for address in self.ec2_backend.addresses:
                if address.eni is other and ASSOCIATED.get(address.allocation_id) == ip:
                    address.eni = eni
        eni.private_ip_addresses.append({"Primary": False, "PrivateIpAddress": ip})
    return self.response(
        {"NetworkInterfaceId": eni.id, "AssignedPrivateIpAddresses": []}
    )


def unassign_private(self):
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    gone = self._get_param("PrivateIpAddresses", [])
    for ip in gone:
        if ip not in private_ips(eni):
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Some of the specified addresses are not assigned to interface {eni.id}",
            )
    eni.private_ip_addresses = [
        a for a in eni.private_ip_addresses if a["PrivateIpAddress"] not in gone
    ]
    for address in self.ec2_backend.addresses:
        if address.eni is eni and ASSOCIATED.get(address.allocation_id) in gone:
            disassociate(address)
    return self.response({})


def assign_ipv6(self):
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    wanted = self._get_param("Ipv6Addresses", [])
    for ip in wanted:
        for other in self.ec2_backend.enis.values():
            if other.id != eni.id and ip in other.ipv6_addresses:
                raise EC2ClientError(
                    "InvalidParameterValue", f"Address {ip} is in use by {other.id}"
                )
    eni.ipv6_addresses.extend(ip for ip in wanted if ip not in eni.ipv6_addresses)
    return self.response({"NetworkInterfaceId": eni.id, "AssignedIpv6Addresses": wanted})


def disassociate(address):
    address.eni = None
    address.instance = None
    address.association_id = None
    ASSOCIATED.pop(address.allocation_id, None)


def associate(self):
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    allocation = self._get_param("AllocationId")
    (address,) = self.ec2_backend.describe_addresses(allocation_ids=[allocation])
    private = self._get_param("PrivateIpAddress") or eni.private_ip_address
    if private not in private_ips(eni):
        raise EC2ClientError(
            "InvalidParameterValue",
            f"{private} is not a private address of {eni.id}",
        )
    allow = str(self._get_param("AllowReassociation", False)).lower() == "true"
    if address.eni is not None and not allow:
        raise EC2ClientError(
            "Resource.AlreadyAssociated",
            f"Elastic IP address [{allocation}] is already associated",
        )
    address.eni = eni
    address.association_id = "eipassoc-" + os.urandom(9).hex()[:17]
    ASSOCIATED[allocation] = private
    return self.response({"AssociationId": address.association_id})


def disassociate_response(self):
    association = self._get_param("AssociationId")
    for address in self.ec2_backend.addresses:
        if address.association_id == association:
            disassociate(address)
            return self.response({})
    raise EC2ClientError(
        "InvalidAssociationID.NotFound", f"The association ID '{association}' does not exist"
    )


def response(self, body):
    return ActionResult(body) if body else EmptyResult()


for cls in (ElasticIPAddresses, ElasticNetworkInterfaces):
    cls.response = response
ElasticNetworkInterfaces.assign_private_ip_addresses = assign_private
ElasticNetworkInterfaces.unassign_private_ip_addresses = unassign_private
ElasticNetworkInterfaces.assign_ipv6_addresses = assign_ipv6
ElasticIPAddresses.associate_address = associate
ElasticIPAddresses.disassociate_address = disassociate_response


# --- the cloud namespace ---------------------------------------------------------

INSTALLED = {}  # address -> (link, mac)


def run(args, stdin=None):
    done = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")


def nodes():
    for backend in backends():
        for eni in backend.enis.values():
            link = eni.get_filter_value("tag:cloud-link")
            if link:
                v4 = private_ips(eni)
                v6 = [str(ipaddress.ip_address(a)) for a in eni.ipv6_addresses]
                yield link, eni.mac_address, v4, v6


def associations():
    for backend in backends():
        for address in backend.addresses:
            private = address.private_ip_address
            if private:
                yield private, address.public_ip


def sync(internet):
    wanted = {}
    rules = ["table netdev vpc {}", "delete table netdev vpc", "table netdev vpc {"]
    for link, mac, v4, v6 in nodes():
        for ip in v4 + v6:
            wanted[ip] = (link, mac)
        v6_sources = ", ".join(v6 + ["fe80::/10"])
        rules += [
            f"  chain from_{link} {{",
            f'    type filter hook ingress device "{link}" priority 0; policy accept;',
            f"    ether saddr != {mac} counter drop",
            f"    ether type ip ip saddr != {{ {', '.join(v4)} }} counter drop",
            f"    ether type ip6 ip6 saddr != {{ {v6_sources} }} counter drop",
            "  }",
        ]
    rules.append("}")
    nat = ["table ip vpcnat {}", "delete table ip vpcnat", "table ip vpcnat {"]
    nat.append("  chain out { type nat hook postrouting priority srcnat; policy accept;")
    pairs = list(associations())
    for private, public in pairs:
        nat.append(f'    oifname "{internet}" ip saddr {private} snat to {public}')
    nat.append("  }")
    nat.append("  chain in { type nat hook prerouting priority dstnat; policy accept;")
    for private, public in pairs:
        nat.append(f'    iifname "{internet}" ip daddr {public} dnat to {private}')
    nat += ["  }", "}"]
    run(["nft", "-f", "-"], "\n".join(rules + nat) + "\n")
    for ip, (link, mac) in list(INSTALLED.items()):
        if wanted.get(ip) != (link, mac):
            family = "-6" if ":" in ip else "-4"
            subprocess.run(["ip", family, "route", "del", ip, "dev", link], capture_output=True)
            subprocess.run(["ip", family, "neigh", "del", ip, "dev", link], capture_output=True)
            del INSTALLED[ip]
    for ip, (link, mac) in wanted.items():
        family = "-6" if ":" in ip else "-4"
        run(["ip", family, "route", "replace", ip, "dev", link])
        run(["ip", family, "neigh", "replace", ip, "lladdr", mac, "dev", link, "nud", "permanent"])
        INSTALLED[ip] = (link, mac)


# --- the server --------------------------------------------------------------------


def error_body(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
        "</Error></Errors><RequestID>egress-router-test</RequestID></Response>"
    ).encode()


class Cloud:
    """WSGI middleware: faults, then moto, then the sync of the namespace."""

    def __init__(self, app, faults, internet):
        self.app, self.faults, self.internet = app, faults, internet
        self.served = {}

    def fault(self, action):
        try:
            with open(self.faults) as f:
                faults = json.load(f)
        except (OSError, ValueError):
            return None
        fault = faults.get(action)
        if not fault:
            return None
        count = self.served.get(action, 0)
        if "times" in fault and count >= fault["times"]:
            return None
        self.served[action] = count + 1
        return fault

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = BytesIO(body)
        query = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode(errors="replace"))
        action = (query.get("Action") or [""])[0]
        fault = self.fault(action)
        if fault and fault.get("hang"):
            time.sleep(60)
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b""]
        if fault:
            status = fault.get("status", 400)
            start_response(f"{status} Fault", [("Content-Type", "text/xml")])
            return [error_body(fault["code"], fault.get("message", "injected by the test"))]
        with LOCK:
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["status"], captured["headers"] = status, headers
                return lambda data: None

            out = b"".join(self.app(environ, capture))
            if action and not action.startswith("Describe") and captured["status"].startswith("200"):
                try:
                    sync(self.internet)
                except Exception as e:  # the test must see it
                    print(f"cloud sync failed after {action}: {e}", file=sys.stderr, flush=True)
                    start_response("500 Internal Server Error", [("Content-Type", "text/xml")])
                    return [error_body("CloudSyncFailed", str(e))]
        start_response(captured["status"], captured["headers"])
        return [out]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults", required=True)
    parser.add_argument("--internet", required=True)
    args = parser.parse_args()
    app = Cloud(DomainDispatcherApplication(create_backend_app), args.faults, args.internet)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"EC2 API listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
