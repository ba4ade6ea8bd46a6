namespace LoraBridge.Prompting;

/// <summary>
/// Reads a prompt with A1111's prompt-editing grammar (lark 1.1.2, Earley, dynamic lexer):
/// <code>
/// start: (prompt | /[][():]/+)*
/// prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
/// emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
/// scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
/// alternate: "[" prompt ("|" [prompt])+ "]"
/// plain: /([^\\\[\]():|]|\\.)+/
/// </code>
/// Inside brackets the grammar admits only one reading, so groups are parsed greedily. At the top level stray
/// <c>[ ] ( ) :</c> are allowed, which makes the grammar ambiguous. lark resolves ambiguity top-down from the right
/// end: the derivation whose last item is a prompt beats one whose last item is a stray character, and derivations
/// that differ only in where the last item starts tie; lark breaks such ties in hash-set order, i.e. by
/// PYTHONHASHSEED (quirk 0). This parser breaks every such tie the same way: the last item starts as late as
/// possible (the shortest last item). For <c>[a:b:5]:1.5</c> that is the edit reading, which 21 of 32 seeds give.
/// </summary>
public sealed class ScheduleParser
{
    /// <summary>Nesting beyond which A1111's recursive lark Transformer raises RecursionError (it fails between 200 and 300).</summary>
    public const int RecursionLimit = 200;

    // The group parser recurses once per bracket level. Texts with many openers are parsed on a thread with a
    // large stack; beyond MaxParseDepth the parser stops descending and reports RecursionError.
    private const int InlineDepth = 1000;
    private const int MaxParseDepth = 100_000;
    private const long MaxStackBytes = 512L * 1024 * 1024;

    private readonly string s;
    private readonly int n;
    private readonly int[] plainEnd;
    private readonly Dictionary<int, ScheduleNode?> groups = new();
    private bool tooDeep;
    private int depthLimit = MaxParseDepth;

    private ScheduleParser(string text)
    {
        s = text;
        n = text.Length;
        plainEnd = new int[n + 1];
        plainEnd[n] = n;
        for (int i = n - 1; i >= 0; i--)
        {
            char c = s[i];
            if (c is '[' or ']' or '(' or ')' or ':' or '|') plainEnd[i] = i;
            else if (c == '\\') plainEnd[i] = i + 1 < n && s[i + 1] != '\n' ? plainEnd[Math.Min(i + 2, n)] : i;
            else plainEnd[i] = plainEnd[i + 1];
        }
    }

    /// <summary>Parses <paramref name="text"/>; never throws. A RecursionError result is reported for too-deep nesting.</summary>
    public static PromptResult<ScheduleTree> Parse(string text)
    {
        // Most prompts have no syntax at all: one plain token (or nothing).
        if (text.AsSpan().IndexOfAny(SyntaxChars) < 0)
            return PromptResult<ScheduleTree>.Ok(new ScheduleTree(text, true, text.Length == 0 ? [] : [new TextNode(0, text.Length, text, false)], 0));
        var p = new ScheduleParser(text);
        // Group recursion is bounded by the bracket depth; only very deep texts need a thread with a big stack.
        int depth = 0, maxDepth = 0;
        foreach (char c in text)
        {
            if (c is '[' or '(') maxDepth = Math.Max(maxDepth, ++depth);
            else if (c is ']' or ')' && depth > 0) depth--;
        }
        ScheduleTree tree;
        if (maxDepth <= InlineDepth)
        {
            // The bracket depth bounds the recursion; the limit is a second guard for the default thread stack.
            p.depthLimit = 2 * InlineDepth;
            tree = p.ParseTop();
        }
        else
        {
            ScheduleTree? result = null;
            int stack = (int)Math.Min(MaxStackBytes, 1L * 1024 * 1024 + 4096L * Math.Min(maxDepth, MaxParseDepth));
            var thread = new Thread(() => result = p.ParseTop(), stack);
            thread.Start();
            thread.Join();
            tree = result!;
        }
        if (p.tooDeep || tree.Depth > RecursionLimit)
        {
            int at = FirstDeepOffset(text);
            return PromptResult<ScheduleTree>.Fail(new PromptError(PromptErrorKind.RecursionError, at,
                $"brackets nested more than {RecursionLimit} deep (A1111's prompt parser raises RecursionError)"));
        }
        return PromptResult<ScheduleTree>.Ok(tree);
    }

    private static int FirstDeepOffset(string text)
    {
        int depth = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] is '[' or '(') { if (++depth > RecursionLimit) return i; }
            else if (text[i] is ']' or ')') depth = Math.Max(0, depth - 1);
        }
        return 0;
    }

    private static readonly System.Buffers.SearchValues<char> SyntaxChars = System.Buffers.SearchValues.Create("[]():|\\");

    private static bool IsStray(char c) => c is '[' or ']' or '(' or ')' or ':';

    private ScheduleTree ParseTop()
    {
        // A prompt item starting at k is a chain of elements: Element(k), then Element(its end), ... Which
        // positions the top level can reach, and which element chains end where, is all the resolution needs.
        var reach = new bool[n + 1];
        var first = new ScheduleNode?[n + 1];
        var lastStartEndingAt = new int[n + 1]; // largest reachable element start per element end (0 = none)
        reach[0] = true;
        for (int k = 0; k < n; k++)
        {
            if (!reach[k]) continue;
            if (IsStray(s[k])) reach[k + 1] = true;
            var node = Element(k, 0);
            if (node is null) continue;
            first[k] = node;
            reach[node.End] = true;
            lastStartEndingAt[node.End] = k;
        }
        if (n > 0 && !reach[n])
            return new ScheduleTree(s, false, [new TextNode(0, n, s, false)], 0);

        var chainFromZero = new bool[n + 1];
        for (var node = first[0]; node is not null; node = first[node.End]) chainFromZero[node.End] = true;
        var strayPrefix = new int[n + 1];
        for (int i = 0; i < n; i++) strayPrefix[i + 1] = strayPrefix[i] + (IsStray(s[i]) ? 1 : 0);
        bool AllStray(int a, int b) => strayPrefix[b] - strayPrefix[a] == b - a;

        // Items chosen right to left: (start, end, isPrompt).
        var items = new List<(int Start, int End, bool IsPrompt)>();
        int jj = n;
        while (jj > 0)
        {
            if (chainFromZero[jj]) { items.Add((0, jj, true)); break; }
            if (AllStray(0, jj)) { items.Add((0, jj, false)); break; }
            // The latest start of a prompt ending at jj is the start of the single element ending there.
            int pick = lastStartEndingAt[jj] >= 1 ? lastStartEndingAt[jj] : -1;
            if (pick >= 0) { items.Add((pick, jj, true)); jj = pick; continue; }
            for (int k = jj - 1; k >= 1 && pick < 0; k--)
            {
                if (!IsStray(s[k])) break;
                if (reach[k]) pick = k;
            }
            if (pick < 0) return new ScheduleTree(s, false, [new TextNode(0, n, s, false)], 0); // unreachable when reach[n]
            items.Add((pick, jj, false));
            jj = pick;
        }
        items.Reverse();
        var nodes = new List<ScheduleNode>();
        foreach (var (start, end, isPrompt) in items)
        {
            if (isPrompt)
                for (var node = first[start]; node is not null && node.End <= end; node = first[node.End])
                    nodes.Add(node);
            else nodes.Add(new TextNode(start, end, s[start..end], true));
        }
        int depth = 0;
        foreach (var node in nodes) depth = Math.Max(depth, DepthOf(node));
        return new ScheduleTree(s, true, nodes, depth);
    }

    // One element of a prompt at i: a valid group or a plain run; null where no element can start.
    private ScheduleNode? Element(int i, int depth)
    {
        if (s[i] is '[' or '(') return Group(i, depth + 1);
        int e = plainEnd[i];
        return e > i ? new TextNode(i, e, s[i..e], false) : null;
    }

    private static int DepthOf(ScheduleNode node)
    {
        // Iterative, so absurd nesting cannot overflow the stack.
        int max = 0;
        var stack = new Stack<(ScheduleNode Node, int Depth)>();
        stack.Push((node, node is TextNode ? 0 : 1));
        while (stack.Count > 0)
        {
            var (cur, d) = stack.Pop();
            max = Math.Max(max, d);
            IEnumerable<IReadOnlyList<ScheduleNode>> children = cur switch
            {
                EmphasisNode e => e.AfterColon is null ? [e.Inner] : [e.Inner, e.AfterColon],
                EditNode e => e.Before is null ? [e.After] : [e.Before, e.After],
                AlternateNode a => a.Options,
                _ => [],
            };
            foreach (var seq in children)
                foreach (var c in seq)
                    if (c is not TextNode) stack.Push((c, d + 1));
        }
        return max;
    }

    // prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)* read greedily from i; returns the elements
    // and the offset where no further element can start.
    private (List<ScheduleNode> Nodes, int Stop) Sequence(int i, int depth)
    {
        var list = new List<ScheduleNode>();
        while (i < n && Element(i, depth) is { } node)
        {
            list.Add(node);
            i = node.End;
        }
        return (list, i);
    }

    private ScheduleNode? Group(int p, int depth)
    {
        if (groups.TryGetValue(p, out var cached)) return cached;
        ScheduleNode? result = null;
        if (depth > depthLimit) tooDeep = true;
        else result = s[p] == '(' ? Round(p, depth) : Square(p, depth);
        groups[p] = result;
        return result;
    }

    private EmphasisNode? Round(int p, int depth)
    {
        var (inner, q) = Sequence(p + 1, depth);
        if (q >= n) return null;
        if (s[q] == ')') return new EmphasisNode(p, q + 1, '(', inner, null);
        if (s[q] != ':') return null;
        var (second, r) = Sequence(q + 1, depth);
        if (r < n && s[r] == ')') return new EmphasisNode(p, r + 1, '(', inner, second);
        return null;
    }

    private ScheduleNode? Square(int p, int depth)
    {
        var (first, q) = Sequence(p + 1, depth);
        if (q >= n) return null;
        switch (s[q])
        {
            case ']':
                return new EmphasisNode(p, q + 1, '[', first, null);
            case '|':
            {
                var options = new List<IReadOnlyList<ScheduleNode>> { first };
                while (q < n && s[q] == '|')
                {
                    var (next, r) = Sequence(q + 1, depth);
                    options.Add(next);
                    q = r;
                }
                return q < n && s[q] == ']' ? new AlternateNode(p, q + 1, options) : null;
            }
            case ':':
            {
                // [after:when] and [before:after:when] exclude each other: a number followed by ']' is read by the
                // second prompt as plain text, which then stops at ']' instead of ':'.
                if (TryWhen(q + 1, out var e1)) return new EditNode(p, e1.End, null, first, e1.Lead, e1.Number, e1.NumberStart, e1.Trail);
                var (second, r) = Sequence(q + 1, depth);
                if (r < n && s[r] == ':' && TryWhen(r + 1, out var e2))
                    return new EditNode(p, e2.End, first, second, e2.Lead, e2.Number, e2.NumberStart, e2.Trail);
                return null;
            }
            default:
                return null;
        }
    }

    // [WHITESPACE] NUMBER [WHITESPACE] "]"
    private bool TryWhen(int i, out (string Lead, string Number, int NumberStart, string Trail, int End) when)
    {
        when = default;
        int a = SkipSpace(i);
        int numEnd = MatchSignedNumber(a);
        if (numEnd < 0) return false;
        int b = SkipSpace(numEnd);
        if (b >= n || s[b] != ']') return false;
        when = (s[i..a], s[a..numEnd], a, s[numEnd..b], b + 1);
        return true;
    }

    private int SkipSpace(int i)
    {
        while (i < n && PyText.IsSpace(PyText.CodePointAt(s, i, out int len))) i += len;
        return i;
    }

    // lark common.SIGNED_NUMBER: ["+"|"-"] (FLOAT | INT), FLOAT: INT _EXP | DECIMAL _EXP?, ASCII digits only.
    private int MatchSignedNumber(int i)
    {
        int p = i;
        if (p < n && s[p] is '+' or '-') p++;
        int intEnd = Digits(p);
        if (intEnd > p && intEnd < n && s[intEnd] is 'e' or 'E')
        {
            int e = Exponent(intEnd);
            if (e > 0) return e;
        }
        int decEnd = -1;
        if (intEnd > p && intEnd < n && s[intEnd] == '.') decEnd = Digits(intEnd + 1);
        else if (intEnd == p && p < n && s[p] == '.' && Digits(p + 1) > p + 1) decEnd = Digits(p + 1);
        if (decEnd >= 0)
        {
            if (decEnd < n && s[decEnd] is 'e' or 'E')
            {
                int e = Exponent(decEnd);
                if (e > 0) return e;
            }
            return decEnd;
        }
        return intEnd > p ? intEnd : -1;
    }

    private int Digits(int i)
    {
        while (i < n && s[i] is >= '0' and <= '9') i++;
        return i;
    }

    private int Exponent(int e)
    {
        int p = e + 1;
        if (p < n && s[p] is '+' or '-') p++;
        int d = Digits(p);
        return d > p ? d : -1;
    }
}
