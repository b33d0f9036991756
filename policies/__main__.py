"""CrossGuard entry point: `pulumi preview --policy-pack policies/` runs this file.

Everything is built by dynamo_iac.policies.pack from the one rule list the offline runner uses;
this file only constructs the PolicyPack (whose constructor serves the engine and never returns).
"""
import sys
from pathlib import Path

try:
    import dynamo_iac  # noqa: F401
except ModuleNotFoundError:          # the pack's venv without the package: use this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynamo_iac.policies.pack import pack_args  # noqa: E402

if __name__ == "__main__":
    from pulumi_policy import PolicyPack

    PolicyPack(**pack_args())
