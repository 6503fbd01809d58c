namespace VmmSharp.State;

/// <summary>Saved state that cannot be restored: truncated, of an unknown version, or holding an impossible value.</summary>
public sealed class StateFormatException : VmmException
{
    /// <summary>Creates an error whose message names the value that is wrong.</summary>
    public StateFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an error with a message and the error that caused it.</summary>
    public StateFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an error with no message; prefer the constructors that say what is wrong.</summary>
    public StateFormatException()
    {
    }

    /// <summary>Throws when a restored component sees a state version it does not know.</summary>
    /// <param name="component">What is being restored, for the message.</param>
    /// <param name="version">The version found.</param>
    /// <param name="newest">The newest version the component reads.</param>
    public static void ThrowIfUnknownVersion(string component, ushort version, ushort newest)
    {
        if (version == 0 || version > newest)
        {
            throw new StateFormatException($"{component}: state version {version} is unknown (this build reads 1 to {newest})");
        }
    }
}
