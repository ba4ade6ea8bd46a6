using Xunit;

namespace LoraBridge.TestSupport;

/// <summary>A fact that reads <c>../shared</c>: skipped, naming the missing folder, when the folder is absent.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class SharedFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when <see cref="SharedData.IsAvailable"/> is false.</summary>
    public SharedFactAttribute()
    {
        // xunit reads Skip from the constructed attribute at discovery, so a skip decided here is reported as such.
        if (SharedData.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory that reads <c>../shared</c> (often in its data): skipped as a whole when the folder is absent.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class SharedTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when <see cref="SharedData.IsAvailable"/> is false.</summary>
    public SharedTheoryAttribute()
    {
        // A skipped theory is not enumerated, so member data that reads the folder is never called.
        if (SharedData.SkipReason is { } reason) Skip = reason;
    }
}
