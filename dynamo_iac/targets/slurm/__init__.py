"""Slurm target: a DynamoGraph + a SlurmCluster → one sbatch script (srun steps pinned by the
allocation map, probes with deadlines, fail-fast with a report, cleanup), plus submit/follow."""
from .cluster import SlurmCluster, load_cluster
from .options import BenchmarkOptions, RunOptions
from .placement import Placement, place
from .script import SlurmJob, render

__all__ = ["BenchmarkOptions", "Placement", "RunOptions", "SlurmCluster", "SlurmJob", "load_cluster", "place", "render"]
