"""Stack presets: typed stack configuration and the one Pulumi program every stack runs."""
