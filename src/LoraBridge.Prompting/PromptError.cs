namespace LoraBridge.Prompting;

/// <summary>The Python exception A1111 raises for a construct (the engine reports it instead of throwing).</summary>
public enum PromptErrorKind
{
    /// <summary><c>float()</c>/<c>int()</c> rejected a value.</summary>
    ValueError,
    /// <summary>A LoRA tag has no positional argument.</summary>
    IndexError,
    /// <summary><c>int(inf)</c> for a huge edit step.</summary>
    OverflowError,
    /// <summary>Nesting too deep for lark's recursive transformer.</summary>
    RecursionError,
    /// <summary>Extended syntax (beyond A1111) is malformed.</summary>
    SyntaxError,
}

/// <summary>Which part of the pipeline an error comes from.</summary>
public enum PromptErrorSource
{
    /// <summary>Prompt editing or emphasis; A1111 aborts the generation.</summary>
    Prompt,
    /// <summary>Arguments of a LoRA/hypernet tag; A1111 prints the error, unloads that network type and generates anyway.</summary>
    Network,
    /// <summary>The request itself (step counts).</summary>
    Request,
}

/// <summary>A typed error with the offset in the text it refers to.</summary>
/// <param name="Kind">Error kind; for A1111 constructs, the Python exception type.</param>
/// <param name="Position">UTF-16 offset in the text the error refers to.</param>
/// <param name="Message">Readable explanation.</param>
/// <param name="Source">Pipeline stage that reported it.</param>
public sealed record PromptError(PromptErrorKind Kind, int Position, string Message, PromptErrorSource Source = PromptErrorSource.Prompt)
{
    /// <summary>The Python exception name, as conformance records show it.</summary>
    public string PythonType => Kind.ToString();

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} at {Position}: {Message}";
}
