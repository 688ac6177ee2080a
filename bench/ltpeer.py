#!/usr/bin/python3
"""One libtorrent 2.0 peer for shoal's side-by-side benchmark (bench/).

It speaks the same line protocol as shoal-bench's child processes, so the
Go harness drives both the same way:

    peer -> harness:  READY <ip>:<port>
    harness -> leecher: GO <ip>:<port> ...   (the peers to connect to)
    leecher -> harness: DONE <seconds>       (every piece checked and written)
    harness -> peer:  EXIT
    peer -> harness:  STATS <payload uploaded bytes> <peak RSS bytes> <CPU seconds since READY>

Modes:

    ltpeer.py torrent <file> <out.torrent> <piece bytes>
    ltpeer.py seeder  <torrent> <folder holding the file> <listen ip> [--rc4]
    ltpeer.py leecher <torrent> <empty folder> <listen ip> [--rc4]

Plain TCP only (uTP, DHT, LSD, UPnP, NAT-PMP off), encryption off unless
--rc4 (then RC4 is forced on every connection, both directions). A seeder
checks its file fully before READY (as a shoal seeder publishes before
READY), so neither side hashes its own source while the clock runs.
"""

import os
import resource
import sys
import time

import libtorrent as lt


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_torrent(path, out, piece):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    # v1 only: the classic BitTorrent format (SHA-1 pieces) that most
    # swarms use and the cheapest for libtorrent to verify.
    ct = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


def session(ip, rc4):
    s = {
        "listen_interfaces": "%s:0" % ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Every peer of a loopback run has the same address.
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert_category.status | lt.alert_category.error | lt.alert_category.storage,
    }
    if rc4:
        s["out_enc_policy"] = lt.enc_policy.forced
        s["in_enc_policy"] = lt.enc_policy.forced
        s["allowed_enc_level"] = lt.enc_level.rc4
        s["prefer_rc4"] = True
    else:
        s["out_enc_policy"] = lt.enc_policy.disabled
        s["in_enc_policy"] = lt.enc_policy.disabled
    return lt.session(s)


def wait_state(ses, h, done, timeout):
    end = time.time() + timeout
    while time.time() < end:
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                raise SystemExit("FAILED %s" % a.message())
        if done(h.status()):
            return
        ses.wait_for_alert(20)
    raise SystemExit("FAILED timeout")


def flush(ses, h, timeout):
    """Waits until the torrent's pending disk writes have reached the file
    (cache_flushed_alert): a torrent is "seeding" once every piece passed
    its hash check, which can be before its last blocks were written."""
    h.flush_cache()
    end = time.time() + timeout
    while time.time() < end:
        for a in ses.pop_alerts():
            if isinstance(a, lt.cache_flushed_alert):
                return
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                raise SystemExit("FAILED %s" % a.message())
        ses.wait_for_alert(20)
    raise SystemExit("FAILED timeout flushing")


def peer(role, torrent, folder, ip, rc4):
    ses = session(ip, rc4)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = folder
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    if role == "seeder":
        wait_state(ses, h, lambda st: st.is_seeding, 3600)
    else:
        wait_state(ses, h, lambda st: st.state == lt.torrent_status.downloading or st.is_seeding, 600)
    port = ses.listen_port()
    cpu0 = cpu()
    say("READY %s:%d" % (ip, port))
    for line in sys.stdin:
        f = line.split()
        if not f:
            continue
        if f[0] == "GO":
            start = time.time()
            for p in f[1:]:
                host, _, port_text = p.rpartition(":")
                h.connect_peer((host, int(port_text)))
            wait_state(ses, h, lambda st: st.is_seeding, 3600)
            flush(ses, h, 600)
            say("DONE %f" % (time.time() - start))
        elif f[0] == "EXIT":
            st = h.status()
            say("STATS %d %d %f" % (st.total_payload_upload, peak_rss(), cpu() - cpu0))
            # Skip libtorrent's orderly shutdown (tracker-less, nothing
            # to announce): the harness has what it needs.
            os._exit(0)


def main():
    args = [a for a in sys.argv[1:] if a != "--rc4"]
    rc4 = "--rc4" in sys.argv[1:]
    if len(args) >= 1 and args[0] == "torrent" and len(args) == 4:
        make_torrent(args[1], args[2], int(args[3]))
        return
    if len(args) == 4 and args[0] in ("seeder", "leecher"):
        peer(args[0], args[1], args[2], args[3], rc4)
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
