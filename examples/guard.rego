# Example rules for the built-in `rego` policy, used by the detector example in docs/detectors.md:
#
#   policies:
#     - class: rego
#       options: {policy_file: ./examples/guard.rego}
#
# The proxy evaluates `data.capsem.decision` on every hook with an input document describing the
# event (its fields: docs/detectors.md, "The Rego input"). Each rule below adds a decision to the
# set; the strictest one wins, and an empty set means ALLOW.
package capsem

import rego.v1

# Tools that change production: the model may call them only on behalf of the deploy agent
# (the caller names its agent in the x-capsem-agent-id header).
production_tools := {"deploy", "rollback", "scale_service"}

decision contains {
	"verdict": "BLOCK",
	"reason": sprintf("only the deploy agent may call %s", [input.tool.name]),
} if {
	input.hook == "on_tool_call"
	input.emitted
	input.tool.name in production_tools
	input.agent_id != "deploy-bot"
}

# Documents marked for internal use never reach a provider.
decision contains {"verdict": "BLOCK", "reason": "the prompt holds a document marked INTERNAL ONLY"} if {
	input.hook == "on_model_call"
	contains(upper(input.prompt), "INTERNAL ONLY")
}
