// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// The XDP shield: UDP to the RTC port passes only from the 5-tuples of live
// sessions (the peers map, which control fills), or when it is a STUN
// Binding Request (RFC 8489 §5, §6: type 0x0001, magic cookie 0x2112A442),
// and those are limited per source IP by a token bucket (GCRA: one
// theoretical arrival time per source). Everything else passes. With
// SHIELD_AFXDP set in the config, a session's RTP and RTCP (first byte
// 128–191, RFC 7983 §7) go to the AF_XDP socket of the receiving queue
// (the xsks map), when it has one; its STUN and DTLS stay with the kernel.
// Built by bpf2go (shield.go); the generated Go and object are committed.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Verdicts: indices of the counters map (shield.go Verdict* constants).
enum verdict {
	V_PASS_SESSION = 0,
	V_PASS_STUN = 1,
	V_DROP_UNKNOWN = 2,
	V_DROP_RATE = 3,
	V_PASS_OTHER = 4,
	V_REDIRECT_XSK = 5,
	V_N = 6,
};

// peer_key is a session's remote address: IPv4 as IPv4-mapped IPv6
// (::ffff:a.b.c.d), the port in network byte order, as in the packet.
struct peer_key {
	__u8 addr[16];
	__be16 port;
	__u16 pad;
};

// shield_cfg is element 0 of the config map.
struct shield_cfg {
	__be16 port;      // the RTC port, network byte order
	__u16 flags;      // SHIELD_AFXDP
	__u32 pad2;
	__u64 interval;   // ns between STUN requests a source earns (1/rate)
	__u64 tolerance;  // (burst-1) × interval: how far ahead a source may run
};

#define SHIELD_AFXDP 1

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);   // RX queue index
	__type(value, __u32); // AF_XDP socket
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 17);
	__type(key, struct peer_key);
	__type(value, __u8);
} peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, __u8[16]);
	__type(value, __u64); // theoretical arrival time, ns (bpf_ktime_get_ns)
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shield_cfg);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, V_N);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 v, int action)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &v);
	if (n)
		*n += 1; // per-CPU: no atomic needed
	return action;
}

// allow_stun charges one STUN request to its source's bucket.
static __always_inline int allow_stun(struct peer_key *k, struct shield_cfg *cfg)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *tat = bpf_map_lookup_elem(&buckets, k->addr);
	if (!tat) {
		__u64 next = now + cfg->interval;
		bpf_map_update_elem(&buckets, k->addr, &next, BPF_ANY);
		return 1;
	}
	__u64 t = *tat;
	if (t < now)
		t = now;
	if (t - now > cfg->tolerance)
		return 0;
	*tat = t + cfg->interval; // a race between CPUs loses a token at worst
	return 1;
}

SEC("xdp")
int fanout_shield(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct peer_key k = {};
	struct udphdr *udp;
	__u32 zero = 0;

	if ((void *)(eth + 1) > end)
		return count(V_PASS_OTHER, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
			return count(V_PASS_OTHER, XDP_PASS);
		if (ip->frag_off & bpf_htons(0x1fff)) // a later fragment has no UDP header
			return count(V_PASS_OTHER, XDP_PASS);
		udp = (void *)ip + ip->ihl * 4;
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], &ip->saddr, 4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		// Extension headers are not walked: such packets pass unfiltered.
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
			return count(V_PASS_OTHER, XDP_PASS);
		udp = (void *)(ip6 + 1);
		__builtin_memcpy(k.addr, &ip6->saddr, 16);
	} else {
		return count(V_PASS_OTHER, XDP_PASS);
	}
	if ((void *)(udp + 1) > end)
		return count(V_PASS_OTHER, XDP_PASS);
	struct shield_cfg *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->port == 0 || udp->dest != cfg->port)
		return count(V_PASS_OTHER, XDP_PASS);
	k.port = udp->source;
	__u8 *p = (void *)(udp + 1);
	if (bpf_map_lookup_elem(&peers, &k)) {
		if ((cfg->flags & SHIELD_AFXDP) && (void *)(p + 1) <= end && p[0] >= 128 && p[0] <= 191) {
			// XDP_PASS when the queue has no socket (kernel >= 5.3).
			int act = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
			if (act == XDP_REDIRECT)
				return count(V_REDIRECT_XSK, act);
		}
		return count(V_PASS_SESSION, XDP_PASS);
	}
	// A STUN Binding Request from a new peer: type 0x0001, cookie.
	if ((void *)(p + 20) > end || p[0] != 0x00 || p[1] != 0x01 ||
	    p[4] != 0x21 || p[5] != 0x12 || p[6] != 0xA4 || p[7] != 0x42)
		return count(V_DROP_UNKNOWN, XDP_DROP);
	if (!allow_stun(&k, cfg))
		return count(V_DROP_RATE, XDP_DROP);
	return count(V_PASS_STUN, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
