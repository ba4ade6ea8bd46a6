using System.Text;

namespace LoraBridge.Prompting;

/// <summary>A node of the prompt-editing syntax tree; offsets are UTF-16 positions in the parsed text.</summary>
/// <param name="Start">First offset.</param>
/// <param name="End">Offset just past the node.</param>
public abstract record ScheduleNode(int Start, int End)
{
    /// <summary>Appends the node's source text.</summary>
    public abstract void Print(StringBuilder sb);
}

/// <summary>Literal text: plain text, whitespace, or a stray top-level <c>[ ] ( ) :</c> (escapes kept verbatim).</summary>
/// <param name="Start">First offset.</param>
/// <param name="End">Offset just past the text.</param>
/// <param name="Text">The text.</param>
/// <param name="IsStray">True for top-level bracket/colon characters the grammar accepts as loose tokens.</param>
public sealed record TextNode(int Start, int End, string Text, bool IsStray) : ScheduleNode(Start, End)
{
    /// <inheritdoc/>
    public override void Print(StringBuilder sb) => sb.Append(Text);
}

/// <summary>Emphasis <c>( ... )</c>, <c>( ... : ... )</c> or <c>[ ... ]</c>; its brackets stay in the scheduled text.</summary>
/// <param name="Start">Offset of the opening bracket.</param>
/// <param name="End">Offset past the closing bracket.</param>
/// <param name="Open">Opening bracket.</param>
/// <param name="Inner">Content (before the colon, if any).</param>
/// <param name="AfterColon">Content after the colon for <c>(a:w)</c>, else null.</param>
public sealed record EmphasisNode(int Start, int End, char Open, IReadOnlyList<ScheduleNode> Inner, IReadOnlyList<ScheduleNode>? AfterColon)
    : ScheduleNode(Start, End)
{
    /// <inheritdoc/>
    public override void Print(StringBuilder sb)
    {
        sb.Append(Open);
        PromptSyntax.PrintAll(Inner, sb);
        if (AfterColon is not null) { sb.Append(':'); PromptSyntax.PrintAll(AfterColon, sb); }
        sb.Append(Open == '(' ? ')' : ']');
    }

    /// <inheritdoc/>
    public bool Equals(EmphasisNode? other) => other is not null && Start == other.Start && End == other.End && Open == other.Open
        && Inner.SequenceEqual(other.Inner) && PromptSyntax.SeqEqual(AfterColon, other.AfterColon);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Start, End, Open, Inner.Count);
}

/// <summary>Prompt editing <c>[before:after:when]</c> or <c>[after:when]</c>.</summary>
/// <param name="Start">Offset of <c>[</c>.</param>
/// <param name="End">Offset past <c>]</c>.</param>
/// <param name="Before">Text before the switch, or null for <c>[after:when]</c>.</param>
/// <param name="After">Text after the switch.</param>
/// <param name="LeadingSpace">Whitespace between the last colon and the number.</param>
/// <param name="Number">The number as written (a dot makes it a fraction).</param>
/// <param name="NumberStart">Offset of the number.</param>
/// <param name="TrailingSpace">Whitespace between the number and <c>]</c>.</param>
public sealed record EditNode(int Start, int End, IReadOnlyList<ScheduleNode>? Before, IReadOnlyList<ScheduleNode> After,
    string LeadingSpace, string Number, int NumberStart, string TrailingSpace) : ScheduleNode(Start, End)
{
    /// <inheritdoc/>
    public override void Print(StringBuilder sb)
    {
        sb.Append('[');
        if (Before is not null) { PromptSyntax.PrintAll(Before, sb); sb.Append(':'); }
        PromptSyntax.PrintAll(After, sb);
        sb.Append(':').Append(LeadingSpace).Append(Number).Append(TrailingSpace).Append(']');
    }

    /// <inheritdoc/>
    public bool Equals(EditNode? other) => other is not null && Start == other.Start && End == other.End
        && PromptSyntax.SeqEqual(Before, other.Before) && After.SequenceEqual(other.After) && LeadingSpace == other.LeadingSpace
        && Number == other.Number && NumberStart == other.NumberStart && TrailingSpace == other.TrailingSpace;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Start, End, Number);
}

/// <summary>Alternation <c>[a|b|...]</c>; step s shows option (s-1) mod count.</summary>
/// <param name="Start">Offset of <c>[</c>.</param>
/// <param name="End">Offset past <c>]</c>.</param>
/// <param name="Options">Options (possibly empty).</param>
public sealed record AlternateNode(int Start, int End, IReadOnlyList<IReadOnlyList<ScheduleNode>> Options) : ScheduleNode(Start, End)
{
    /// <inheritdoc/>
    public override void Print(StringBuilder sb)
    {
        sb.Append('[');
        for (int i = 0; i < Options.Count; i++)
        {
            if (i > 0) sb.Append('|');
            PromptSyntax.PrintAll(Options[i], sb);
        }
        sb.Append(']');
    }

    /// <inheritdoc/>
    public bool Equals(AlternateNode? other) => other is not null && Start == other.Start && End == other.End
        && Options.Count == other.Options.Count && Options.Zip(other.Options).All(p => p.First.SequenceEqual(p.Second));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Start, End, Options.Count);
}

/// <summary>
/// The syntax tree of one (tag-free) prompt as A1111's lark grammar reads it. When the grammar rejects the text
/// (a <c>|</c> outside an alternation, a trailing lone backslash), <see cref="Parsed"/> is false and A1111 uses the
/// whole text unscheduled.
/// </summary>
/// <param name="Source">The parsed text.</param>
/// <param name="Parsed">False for A1111's whole-prompt fallback.</param>
/// <param name="Nodes">Top-level nodes (a single text node when not parsed).</param>
/// <param name="Depth">Deepest bracket nesting in the tree.</param>
public sealed record ScheduleTree(string Source, bool Parsed, IReadOnlyList<ScheduleNode> Nodes, int Depth)
{
    /// <summary>The source text rebuilt from the tree (equals <see cref="Source"/>).</summary>
    public string Print()
    {
        var sb = new StringBuilder(Source.Length);
        PromptSyntax.PrintAll(Nodes, sb);
        return sb.ToString();
    }

    /// <summary>Structural equality (source, parse state and every node with its offsets).</summary>
    public bool StructurallyEquals(ScheduleTree other) =>
        Source == other.Source && Parsed == other.Parsed && Depth == other.Depth && Nodes.SequenceEqual(other.Nodes);

    /// <summary>Every edit node, depth first.</summary>
    public IEnumerable<EditNode> Edits() => PromptSyntax.Walk(Nodes).OfType<EditNode>();

    /// <summary>True when the tree contains an alternation.</summary>
    public bool HasAlternation => PromptSyntax.Walk(Nodes).Any(n => n is AlternateNode);
}

/// <summary>Helpers over node sequences.</summary>
public static class PromptSyntax
{
    /// <summary>Appends the source of every node.</summary>
    public static void PrintAll(IReadOnlyList<ScheduleNode> nodes, StringBuilder sb)
    {
        foreach (var n in nodes) n.Print(sb);
    }

    /// <summary>Sequence equality that accepts two nulls.</summary>
    public static bool SeqEqual(IReadOnlyList<ScheduleNode>? a, IReadOnlyList<ScheduleNode>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b);

    /// <summary>All nodes, depth first, parents before children.</summary>
    public static IEnumerable<ScheduleNode> Walk(IReadOnlyList<ScheduleNode> nodes)
    {
        var stack = new Stack<ScheduleNode>(nodes.Reverse());
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            yield return n;
            IEnumerable<IReadOnlyList<ScheduleNode>> children = n switch
            {
                EmphasisNode e => e.AfterColon is null ? [e.Inner] : [e.Inner, e.AfterColon],
                EditNode e => e.Before is null ? [e.After] : [e.Before, e.After],
                AlternateNode a => a.Options,
                _ => [],
            };
            foreach (var seq in children.Reverse())
                for (int i = seq.Count - 1; i >= 0; i--) stack.Push(seq[i]);
        }
    }
}
