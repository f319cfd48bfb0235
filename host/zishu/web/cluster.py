"""The cluster's JSON API (behind the launch secret like all of /api): the live nodes and the
wanted-models ranking. The Nodes panel and the Wanted models list read these shapes."""

from __future__ import annotations

from flask import Blueprint, jsonify

from zishu.jobs.cluster_view import cluster_nodes, model_ranking

from .app import runtime

cluster = Blueprint("cluster", __name__)


@cluster.get("/api/cluster/nodes")
def nodes():
    return jsonify(cluster_nodes(runtime().jobs))


@cluster.get("/api/model-usage/ranking")
def ranking():
    rt = runtime()
    return jsonify(model_ranking(rt.jobs, rt.registry.load()))
