"""What the bench scripts share: waiting for a daemon they started to answer /readyz."""
import http.client
import time


def ready(port, timeout_s, poll_s):
    """Polls http://127.0.0.1:PORT/readyz every POLL_S seconds until it answers 200 (True)
    or TIMEOUT_S seconds have passed (False)."""
    began = time.time()
    while time.time() - began < timeout_s:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/readyz")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return True
        except OSError:
            pass
        time.sleep(poll_s)
    return False
