namespace VmmSharp.Fuzz.Support;

/// <summary>A clock stopped at one instant, so that a run depends on its input only.</summary>
internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
