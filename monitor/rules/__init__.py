"""Watch rules: compile the config's rules once into a RuleSet; match an item against
all of them. Pure; the only place that knows what a rule means.
"""

from monitor.rules.ruleset import CompiledRule, RuleSet, compile_rules

__all__ = ["CompiledRule", "RuleSet", "compile_rules"]
