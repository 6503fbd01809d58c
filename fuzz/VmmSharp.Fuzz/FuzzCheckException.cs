namespace VmmSharp.Fuzz;

/// <summary>An invariant a harness checks did not hold: a bug even though nothing else threw.</summary>
internal sealed class FuzzCheckException : Exception
{
    public FuzzCheckException(string message)
        : base(message)
    {
    }

    public FuzzCheckException()
    {
    }

    public FuzzCheckException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Throws unless <paramref name="condition"/> holds.</summary>
    public static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new FuzzCheckException(what);
        }
    }
}
