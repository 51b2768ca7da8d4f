"""
Benchmark helper: cacofonisk's FileRunner on one recording, every call event printed as one
JSON line on stdout (the counterpart of `switchboard replay FILE --format jsonl`).

Usage: python3 bench/cacofonisk-filerunner.py CACOFONISK_DIR FILE

cacofonisk logs its warnings about the recordings ("not in mem", ...) to stderr; the
benchmark discards them.

CACOFONISK_DIR is a checkout of github.com/VoIPGRID/cacofonisk. Its AMI runner needs
panoramisk, which the FileRunner does not use: a stub stands in for it, so that nothing needs
to be installed.
"""
import json
import sys
import types

sys.path.insert(0, sys.argv[1])
stub = types.ModuleType('panoramisk')
stub.Manager = object
sys.modules['panoramisk'] = stub

from cacofonisk import BaseReporter, FileRunner  # noqa: E402

out = sys.stdout


class JsonLinesReporter(BaseReporter):
    pass


def _method(name):
    def report(self, *args, **kwargs):
        out.write(json.dumps({'event': name, 'args': args, 'kwargs': kwargs}, default=str))
        out.write('\n')
    return report


for attribute in dir(BaseReporter):
    if attribute.startswith('on_') and attribute != 'on_event':
        setattr(JsonLinesReporter, attribute, _method(attribute[3:]))

reporter = JsonLinesReporter()
FileRunner(sys.argv[2], reporter).run()
reporter.close()
out.flush()
