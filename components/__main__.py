"""Entry point of the component package: serves dynamo_iac's primitive-typed components, with
the schema pulumi's component analyzer infers plus the secret markers it cannot infer
(dynamo_iac.components.package.provider)."""
import sys

from pulumi.provider import main

from dynamo_iac.components.package import provider

if __name__ == "__main__":
    main(provider(), sys.argv[1:])
