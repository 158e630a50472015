// Types of the public schema, in the shape `supabase gen types typescript` produces, kept by hand
// until the project runs the CLI against a database. To regenerate, after `supabase start` (or
// against any database with the migrations applied):
//
//   npx supabase gen types typescript --local > supabase/functions/_shared/database.types.ts
//   npx supabase gen types typescript --db-url "postgresql://postgres:...@host:5432/postgres" \
//     --schema public > supabase/functions/_shared/database.types.ts
//
// then run `deno fmt` on it and paste back the section after "Shapes of the jsonb the RPCs
// return": the generator only knows those functions return `Json`.
//
// Note on messenger_integrations: `settings`, `webhook_key` and the lease columns are listed
// because service_role (the edge functions) reads them, but anon and authenticated have no SELECT
// on them; a user client must name its columns or read messenger_integrations_public.

export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[];

export type Database = {
  // Allows to automatically instantiate createClient with right options
  // instead of createClient<Database, { PostgrestVersion: 'XX' }>(URL, KEY)
  __InternalSupabase: {
    PostgrestVersion: "12.0.2";
  };
  public: {
    Tables: {
      integration_events: {
        Row: {
          action: string;
          actor_user_id: string | null;
          created_at: string;
          details: Json;
          id: number;
          integration_id: string | null;
          organization_id: string;
        };
        Insert: {
          action: string;
          actor_user_id?: string | null;
          created_at?: string;
          details?: Json;
          id?: never;
          integration_id?: string | null;
          organization_id: string;
        };
        Update: {
          action?: string;
          actor_user_id?: string | null;
          created_at?: string;
          details?: Json;
          id?: never;
          integration_id?: string | null;
          organization_id?: string;
        };
        Relationships: [
          {
            foreignKeyName: "integration_events_actor_user_id_fkey";
            columns: ["actor_user_id"];
            isOneToOne: false;
            referencedRelation: "users";
            referencedColumns: ["id"];
          },
          {
            foreignKeyName: "integration_events_integration_id_fkey";
            columns: ["integration_id"];
            isOneToOne: false;
            referencedRelation: "messenger_integrations";
            referencedColumns: ["id"];
          },
          {
            foreignKeyName: "integration_events_integration_id_fkey";
            columns: ["integration_id"];
            isOneToOne: false;
            referencedRelation: "messenger_integrations_public";
            referencedColumns: ["id"];
          },
          {
            foreignKeyName: "integration_events_organization_id_fkey";
            columns: ["organization_id"];
            isOneToOne: false;
            referencedRelation: "organizations";
            referencedColumns: ["id"];
          },
        ];
      };
      messenger_integrations: {
        Row: {
          created_at: string;
          id: string;
          is_active: boolean;
          is_primary: boolean;
          last_provision_error: string | null;
          messenger_type: string;
          name: string;
          organization_id: string;
          provider: string;
          provision_lease_expires_at: string | null;
          provision_lease_id: string | null;
          provision_lease_reason: string | null;
          public_settings: Json | null;
          session_state: string;
          settings: Json;
          updated_at: string;
          webhook_key: string;
        };
        Insert: {
          created_at?: string;
          id?: string;
          is_active?: boolean;
          is_primary?: boolean;
          last_provision_error?: string | null;
          messenger_type: string;
          name?: string;
          organization_id: string;
          provider: string;
          provision_lease_expires_at?: string | null;
          provision_lease_id?: string | null;
          provision_lease_reason?: string | null;
          public_settings?: never;
          session_state?: string;
          settings?: Json;
          updated_at?: string;
          webhook_key?: string;
        };
        Update: {
          created_at?: string;
          id?: string;
          is_active?: boolean;
          is_primary?: boolean;
          last_provision_error?: string | null;
          messenger_type?: string;
          name?: string;
          organization_id?: string;
          provider?: string;
          provision_lease_expires_at?: string | null;
          provision_lease_id?: string | null;
          provision_lease_reason?: string | null;
          public_settings?: never;
          session_state?: string;
          settings?: Json;
          updated_at?: string;
          webhook_key?: string;
        };
        Relationships: [
          {
            foreignKeyName: "messenger_integrations_organization_id_fkey";
            columns: ["organization_id"];
            isOneToOne: false;
            referencedRelation: "organizations";
            referencedColumns: ["id"];
          },
        ];
      };
      organizations: {
        Row: {
          created_at: string;
          id: string;
          name: string;
        };
        Insert: {
          created_at?: string;
          id?: string;
          name: string;
        };
        Update: {
          created_at?: string;
          id?: string;
          name?: string;
        };
        Relationships: [];
      };
      profiles: {
        Row: {
          created_at: string;
          id: string;
          organization_id: string | null;
          role: string;
        };
        Insert: {
          created_at?: string;
          id: string;
          organization_id?: string | null;
          role?: string;
        };
        Update: {
          created_at?: string;
          id?: string;
          organization_id?: string | null;
          role?: string;
        };
        Relationships: [
          {
            foreignKeyName: "profiles_id_fkey";
            columns: ["id"];
            isOneToOne: true;
            referencedRelation: "users";
            referencedColumns: ["id"];
          },
          {
            foreignKeyName: "profiles_organization_id_fkey";
            columns: ["organization_id"];
            isOneToOne: false;
            referencedRelation: "organizations";
            referencedColumns: ["id"];
          },
        ];
      };
      wpp_session_placeholders: {
        Row: {
          note: string | null;
          value: string;
        };
        Insert: {
          note?: string | null;
          value: string;
        };
        Update: {
          note?: string | null;
          value?: string;
        };
        Relationships: [];
      };
    };
    Views: {
      messenger_integrations_public: {
        Row: {
          created_at: string | null;
          id: string | null;
          is_active: boolean | null;
          is_primary: boolean | null;
          messenger_type: string | null;
          name: string | null;
          organization_id: string | null;
          provider: string | null;
          public_settings: Json | null;
          session_state: string | null;
          updated_at: string | null;
        };
        Insert: {
          created_at?: string | null;
          id?: string | null;
          is_active?: boolean | null;
          is_primary?: boolean | null;
          messenger_type?: string | null;
          name?: string | null;
          organization_id?: string | null;
          provider?: string | null;
          public_settings?: never;
          session_state?: string | null;
          updated_at?: string | null;
        };
        Update: {
          created_at?: string | null;
          id?: string | null;
          is_active?: boolean | null;
          is_primary?: boolean | null;
          messenger_type?: string | null;
          name?: string | null;
          organization_id?: string | null;
          provider?: string | null;
          public_settings?: never;
          session_state?: string | null;
          updated_at?: string | null;
        };
        Relationships: [
          {
            foreignKeyName: "messenger_integrations_organization_id_fkey";
            columns: ["organization_id"];
            isOneToOne: false;
            referencedRelation: "organizations";
            referencedColumns: ["id"];
          },
        ];
      };
    };
    Functions: {
      strip_secret_settings: {
        Args: { p_settings: Json };
        Returns: Json;
      };
      wpp_caller_context: {
        Args: { p_user_id: string };
        Returns: Json;
      };
      wpp_integration_for_status: {
        Args: { p_organization_id: string };
        Returns: Json;
      };
      wpp_provision_begin: {
        Args: {
          p_organization_id: string;
          p_force?: boolean;
          p_actor?: string;
          p_lease_seconds?: number;
          p_dead_session?: string;
        };
        Returns: Json;
      };
      wpp_provision_complete: {
        Args: {
          p_integration_id: string;
          p_lease_id: string;
          p_session: string;
          p_api_key: string;
          p_jwt_token?: string;
          p_jwt_expires_at?: number;
          p_actor?: string;
          p_details?: Json;
        };
        Returns: Json;
      };
      wpp_provision_fail: {
        Args: {
          p_integration_id: string;
          p_lease_id: string;
          p_reason: string;
          p_details?: Json;
          p_actor?: string;
        };
        Returns: Json;
      };
      wpp_record_event: {
        Args: {
          p_organization_id: string;
          p_integration_id: string;
          p_actor: string;
          p_action: string;
          p_details?: Json;
        };
        Returns: undefined;
      };
      wpp_repair_legacy_sessions: {
        Args: Record<PropertyKey, never>;
        Returns: number;
      };
      wpp_session_is_valid: {
        Args: { settings: Json; session_state: string };
        Returns: boolean;
      };
      wpp_store_token: {
        Args: {
          p_integration_id: string;
          p_session: string;
          p_token: string;
          p_expires_at: number;
        };
        Returns: boolean;
      };
    };
    Enums: {
      [_ in never]: never;
    };
    CompositeTypes: {
      [_ in never]: never;
    };
  };
};

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">;

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">];

/** Row type of a table or view of the public schema: `Tables<"messenger_integrations">`. */
export type Tables<
  Name extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"]),
> = (DefaultSchema["Tables"] & DefaultSchema["Views"])[Name] extends { Row: infer R } ? R : never;

export type TablesInsert<Name extends keyof DefaultSchema["Tables"]> =
  DefaultSchema["Tables"][Name] extends { Insert: infer I } ? I : never;

export type TablesUpdate<Name extends keyof DefaultSchema["Tables"]> =
  DefaultSchema["Tables"][Name] extends { Update: infer U } ? U : never;

export type Enums<Name extends keyof DefaultSchema["Enums"]> = DefaultSchema["Enums"][Name];

export type CompositeTypes<Name extends keyof DefaultSchema["CompositeTypes"]> =
  DefaultSchema["CompositeTypes"][Name];

export const Constants = {
  public: {
    Enums: {},
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Shapes of the jsonb the RPCs return (hand-written; not produced by the generator).
// ---------------------------------------------------------------------------------------------

export type OrganizationRole = "owner" | "admin" | "member";

/** public.wpp_caller_context(p_user_id) */
export interface WppCallerContext {
  organization_id: string | null;
  role: OrganizationRole | null;
}

export type WppProvisionDecision = "reuse" | "create" | "busy";

export type WppProvisionReason =
  | "valid_session"
  | "no_integration"
  | "placeholder_session"
  | "missing_credentials"
  | "needs_new_session"
  | "dead_key"
  | "forced"
  | "lease_held";

/**
 * public.wpp_provision_begin(...). Every key is always present (null when it does not apply).
 * Contains credentials: service_role only, never forward it to a browser.
 */
export interface WppProvisionBeginResult {
  decision: WppProvisionDecision;
  reason: WppProvisionReason;
  integration_id: string;
  organization_id: string;
  /** create: the lease to pass to complete/fail. */
  lease_id: string | null;
  /** create: when the new lease runs out; busy: when the held one does. ISO timestamp. */
  lease_expires_at: string | null;
  /** busy: whole seconds until the held lease runs out, at least 1. */
  retry_after_seconds: number | null;
  /** What is stored now (for create: the session being replaced, possibly a placeholder). */
  session: string | null;
  api_key: string | null;
  jwt_token: string | null;
  /** ms since the epoch */
  jwt_expires_at: number | null;
  webhook_key: string;
  /** create: the replaced session, when it looked real, so it can be stopped on the platform. */
  old_session: string | null;
  old_api_key: string | null;
  /** create only: an expired lease of another request was taken over. */
  lease_taken_over?: boolean;
  /** When the stored session was created (ms since the epoch), null for sessions stored before. */
  session_created_at: number | null;
}

/** public.wpp_provision_complete(...) */
export interface WppProvisionCompleteResult {
  integration_id: string;
  session: string;
}

/** public.wpp_provision_fail(...) */
export interface WppProvisionFailResult {
  released: boolean;
}

export type IntegrationEventAction =
  | "created"
  | "reused"
  | "recreated"
  | "repaired"
  | "failed"
  | "session_stopped"
  | "stop_failed"
  | "token_refreshed"
  | "token_failed"
  | "webhook_registered"
  | "webhook_failed"
  | "dead_key_detected"
  | "lease_taken_over";

/**
 * SQLSTATEs the provisioning functions raise on purpose; PostgREST returns them as `code`
 * (HTTP 400) and the message starts with the stable word before the colon.
 */
export const WPP_DB_ERRORS = {
  /** invalid_argument: a required argument is missing or out of range */
  invalidArgument: "WP400",
  /** organization_not_found: / integration_not_found: */
  notFound: "WP404",
  /** lease_lost: the lease is not (or no longer) held by this request */
  leaseLost: "WP409",
  /** invalid_session: / invalid_action: / integration_not_in_organization: */
  unprocessable: "WP422",
} as const;
