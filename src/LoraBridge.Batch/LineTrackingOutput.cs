using System.Text;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;
using Scriban.Syntax;

namespace LoraBridge.Batch;

/// <summary>
/// Scriban output that remembers, for every rendered line, the template line its first visible character came from,
/// so a job (and its errors and manifest entry) names the line of the template the user wrote, not of the rendered
/// text, where loops and blank lines shift the numbers.
/// </summary>
/// <remarks>
/// Raw text is written as a slice of the template source itself, so its offset gives the exact line; anything an
/// expression writes (<c>{{ lora … }}</c>, <c>{{ job … }}</c>) is attributed to the line where that expression starts.
/// </remarks>
internal sealed class LineTrackingOutput(string source, LineTrackingContext context) : IScriptOutput
{
    private readonly StringBuilder _text = new();
    private readonly List<int> _lines = [0];
    private int[]? _lineStarts;

    /// <summary>The rendered text.</summary>
    public string Text => _text.ToString();

    /// <summary>Per rendered line (0-based), the 1-based template line of its first non-blank character; 0 when blank.</summary>
    public IReadOnlyList<int> TemplateLines => _lines;

    public void Write(string text, int offset, int count)
    {
        bool fromSource = ReferenceEquals(text, source) && context.WritingLine is null;
        int? expressionLine = null;
        for (int i = offset; i < offset + count; i++)
        {
            char c = text[i];
            _text.Append(c);
            if (c == '\n')
            {
                _lines.Add(0);
            }
            else if (_lines[^1] == 0 && !char.IsWhiteSpace(c))
            {
                _lines[^1] = fromSource ? SourceLine(i) : expressionLine ??= context.WritingLine ?? 0;
            }
        }
    }

    public ValueTask WriteAsync(string text, int offset, int count, CancellationToken cancellationToken)
    {
        Write(text, offset, count);
        return ValueTask.CompletedTask;
    }

    public override string ToString() => Text;

    private int SourceLine(int offset)
    {
        _lineStarts ??= [0, .. source.Select((ch, i) => (ch, i)).Where(p => p.ch == '\n').Select(p => p.i + 1)];
        int index = Array.BinarySearch(_lineStarts, offset);
        return (index >= 0 ? index : ~index - 1) + 1;
    }
}

/// <summary>A template context that tells <see cref="LineTrackingOutput"/> the line of the expression whose value it is writing.</summary>
/// <remarks>
/// A block writes its statements' values with the block's span, so the line comes from the last expression statement
/// evaluated: the block writes a statement's value right after evaluating it.
/// </remarks>
internal sealed class LineTrackingContext : TemplateContext
{
    private int? _lastExpressionLine;

    /// <summary>1-based template line of the expression being written, null while raw text is written.</summary>
    public int? WritingLine { get; private set; }

    public override object? Evaluate(ScriptNode? scriptNode, bool aliasReturnedFunction)
    {
        if (scriptNode is ScriptExpressionStatement) _lastExpressionLine = scriptNode.Span.Start.Line + 1;
        return base.Evaluate(scriptNode, aliasReturnedFunction);
    }

    public override TemplateContext Write(SourceSpan span, object? textAsObject)
    {
        WritingLine = _lastExpressionLine ?? span.Start.Line + 1;
        try
        {
            return base.Write(span, textAsObject);
        }
        finally
        {
            WritingLine = null;
        }
    }
}
