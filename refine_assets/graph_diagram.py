"""A Mermaid diagram of the asset graph, generated from the Definitions (kept in the README)."""

from __future__ import annotations

import dagster as dg


def asset_graph_mermaid(defs: dg.Definitions) -> str:
    """Mermaid ``flowchart LR`` of every asset, grouped by group name, with partitioning noted."""
    graph = defs.resolve_asset_graph()
    nodes = sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string())
    groups: dict[str, list] = {}
    for node in nodes:
        groups.setdefault(node.group_name or "default", []).append(node)
    lines = ["flowchart LR"]

    def ident(key: dg.AssetKey) -> str:
        return key.to_user_string().replace("/", "__")

    for group in sorted(groups):
        lines.append(f"  subgraph {group}")
        for node in groups[group]:
            part = node.partitions_def
            label = node.key.to_user_string()
            if isinstance(part, dg.DynamicPartitionsDefinition):
                label += f"<br/><i>per {part.name}</i>"
            elif part is not None:
                label += "<br/><i>partitioned</i>"
            lines.append(f'    {ident(node.key)}["{label}"]')
        lines.append("  end")
    for node in nodes:
        for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
            lines.append(f"  {ident(parent)} --> {ident(node.key)}")
    return "\n".join(lines) + "\n"
