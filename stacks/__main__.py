"""The Pulumi program behind every stack: `pulumi up -s aws-p5-disagg` runs this file, and
`dynamo-iac plan -s aws-p5-disagg` runs the same program offline."""
from dynamo_iac.stacks.program import main

main()
