"""The resolver's stages, which `archdsl.semantics` runs in this order over a parsed module:

    kinds    the kinds of expressions (value, net, tensor, any), the context a name is
             resolved in, tensor arities                                  (Ctx)
    imports  imported files read and parsed, cycles refused, each file's blocks  (Loader)
    node_options  the hint of a one_of of computations on nodes: the forms that work
    checks   the static checks: given a resolved construct and its parts' kinds, raise
             the error it deserves (arguments, labels, arities, placement, recursion)
    inputs   the `input` declarations: a fixed index bound, every input read by the network
    loose    `loose_ends` merges: where the name may stand, the names it reserves, and
             that a graph returning it always has a loose end
    decision_refs  count(...)/any(...)/all(...) over decisions in constraints: their form,
             and what each decision reference denotes                     (resolve_count)
    names    name resolution: one method per construct sets `ref`s and kinds, and calls
             the checks where each error belongs                          (Resolver)

then `archdsl.shared_names` names the inline `shared` decisions, and `archdsl.semantics`
assembles the `SpaceIR`. A module imports only the ones above it in this list (imports: none of
them; it takes the check of imported blocks as a callback), and the language's modules (ast,
errors, layers, parser, printer, sources, shared_names); never semantics or the interpreter.
Import what you need from the modules themselves; `archdsl.semantics` is the public entry.
"""
