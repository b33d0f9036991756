"""Entry point of the component package: serves dynamo_iac's primitive-typed components."""
from pulumi.provider.experimental import component_provider_host

from dynamo_iac.components.package import ServingStack

if __name__ == "__main__":
    component_provider_host(name="dynamo-iac", components=[ServingStack])
