namespace LoraBridge.Prompting;

/// <summary>A value or a typed error; the engine never throws for user input.</summary>
/// <typeparam name="T">Value type.</typeparam>
public readonly struct PromptResult<T>
{
    private PromptResult(T? value, PromptError? error) { Value = value; Error = error; }

    /// <summary>The value when <see cref="Error"/> is null.</summary>
    public T? Value { get; }

    /// <summary>The error, or null on success.</summary>
    public PromptError? Error { get; }

    /// <summary>True when there is a value.</summary>
    public bool IsOk => Error is null;

    /// <summary>A successful result.</summary>
    public static PromptResult<T> Ok(T value) => new(value, null);

    /// <summary>A failed result.</summary>
    public static PromptResult<T> Fail(PromptError error) => new(default, error);
}
